"""Kappa: the batch report and replay, both the stream through the same core."""
