"""Benchmarks that print exact counts (AWS requests, bytes, transitions) and median times."""
