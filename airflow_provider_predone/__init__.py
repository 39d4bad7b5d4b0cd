"""Apache Airflow provider for Sony Prediction One / Easy Predictive Analytics and NAVER Cloud AiTEMS."""

from __future__ import annotations

__version__ = "0.1.0"
