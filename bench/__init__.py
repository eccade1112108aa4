"""Throughput, latency and recovery benchmarks (run with ``python -m bench``; not a test)."""
