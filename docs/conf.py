"""Sphinx configuration of the airflow-provider-predone documentation (``make docs``)."""

from __future__ import annotations

import functools
import inspect
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# autodoc imports the package, which imports Airflow: keep Airflow away from ~/airflow and
# from the developer's configuration while the docs build.
os.environ.setdefault("AIRFLOW_HOME", str(Path(tempfile.gettempdir()) / "airflow-provider-predone-docs"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from airflow_provider_predone import __version__  # noqa: E402

project = "airflow-provider-predone"
author = "airflow-provider-predone developers"
copyright = "2026, airflow-provider-predone developers"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]

myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
autoclass_content = "class"

html_theme = "alabaster"
html_title = f"airflow-provider-predone {release}"
html_static_path = ["_static"]
html_theme_options = {
    "description": "Airflow provider for Sony Prediction One and NAVER Cloud AiTEMS",
    "fixed_sidebar": True,
    "page_width": "1240px",
    "sidebar_width": "250px",
}
html_sidebars = {"**": ["about.html", "navigation.html", "searchbox.html"]}


def _public_methods_too(app: object, what: str, name: str, obj: object, skip: bool, options: object) -> bool | None:
    """
    Every public method and property of a class is in the reference, with a docstring of its
    own or not (``AitemsHook.list_services`` had none, so autodoc left it out); attributes
    without one stay out.
    """
    routine = inspect.isroutine(obj) or isinstance(obj, property | functools.cached_property)
    if skip and what == "class" and not name.startswith("_") and routine:
        return False
    return None


def setup(app: Any) -> None:
    app.connect("autodoc-skip-member", _public_methods_too)
