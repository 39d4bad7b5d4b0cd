"""Apache Airflow provider for Sony Prediction One / Easy Predictive Analytics and NAVER Cloud AiTEMS."""

from __future__ import annotations

# The one version source: pyproject.toml reads it (setuptools dynamic version), and so do the
# provider metadata, the User-Agent and the docs.
__version__ = "0.6.0"
