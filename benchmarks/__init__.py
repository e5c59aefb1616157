"""Benchmark suite for trio_ws: ``python -m benchmarks`` (see README.md)."""
