"""Micro-benchmarks (not tests; they do not gate CI)."""
