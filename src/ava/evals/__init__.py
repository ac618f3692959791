"""Benchmarks: each is one module with its loader, prompt template (as data) and metrics."""
