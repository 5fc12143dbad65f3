"""Benchmarks against the real emulators; each module runs with ``python -m bench.<name>``."""
