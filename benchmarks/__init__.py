"""Benchmarks of airflow-provider-predone (``python -m benchmarks``; see docs/benchmarks.md)."""
