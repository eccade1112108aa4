"""Kafka plumbing: the batch seam, topic admin and I/O, changelog reading, the embedded broker."""
