"""
The provider's Airflow UI plugin: the "Models" page (Airflow 3.1+), and the operator extra
link to it.

This package's ``__init__`` stays empty: operators import :mod:`.links` at every DAG parse,
and the page's modules (FastAPI, the ORM) load only in the api-server.
"""
