"""
The guides cannot drift from the code: every operator and sensor has a parameter table in a
guide (``docs/guides/*.md``), the table lists every parameter the provider defines for it and
nothing that does not exist, and every guide shows code inline (a fenced ``python`` block,
readable where Markdown is rendered without Sphinx, e.g. on GitHub).

A parameter table is a Markdown table whose header starts with ``| parameter |``; it documents
the classes named (in backticks) by the nearest heading above it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest
from helpers import REPO

GUIDES = sorted((REPO / "docs" / "guides").glob("*.md"))
HEADING = re.compile(r"^#{1,6} (.*)$")
NAME = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


#: Classes of modules this Airflow cannot import (their tables are checked on a newer one).
UNIMPORTABLE: set[str] = set()
#: Public bases that DAGs do not use directly (documented through their subclasses).
BASES = {"PredictionOneBaseOperator", "PredictionOneJobOperator"}


def public_classes() -> dict[str, type]:
    """Every operator and sensor a user can import from the provider's modules."""
    from airflow.providers.common.compat.sdk import BaseOperator

    import airflow_provider_predone.operators
    import airflow_provider_predone.sensors

    found = {}
    for package in (airflow_provider_predone.operators, airflow_provider_predone.sensors):
        for info in pkgutil.iter_modules(package.__path__):
            if info.name == "base" or info.name.startswith("_"):
                continue  # the shared bases
            try:
                module = importlib.import_module(f"{package.__name__}.{info.name}")
            except ImportError:  # a module for a newer Airflow (human-in-the-loop needs 3.1)
                path = Path(package.__path__[0]) / f"{info.name}.py"
                UNIMPORTABLE.update(re.findall(r"^class (\w+)\(", path.read_text(), flags=re.MULTILINE))
                continue
            for name, value in vars(module).items():
                if (
                    inspect.isclass(value)
                    and issubclass(value, BaseOperator)
                    and value.__module__ == module.__name__
                    and not name.startswith("_")
                    and name not in BASES
                ):
                    found[name] = value
    return found


def parameters(cls: type, *, ours_only: bool) -> set[str]:
    """``__init__`` parameters along the MRO (only the provider's own classes with ``ours_only``)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or (ours_only and not klass.__module__.startswith("airflow_provider_predone")):
            continue
        for parameter in inspect.signature(klass.__init__).parameters.values():
            if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL) or parameter.name == "self":
                continue
            names.add(parameter.name)
    return {name for name in names if not name.startswith("_")}


def parameter_tables() -> dict[str, list[tuple[Path, set[str]]]]:
    """Class name → the parameter tables documenting it (guide, documented names)."""
    tables: dict[str, list[tuple[Path, set[str]]]] = {}
    for guide in GUIDES:
        classes: list[str] = []
        lines = guide.read_text().splitlines()
        in_fence = False
        for number, line in enumerate(lines):
            if line.startswith("```"):
                in_fence = not in_fence
            if in_fence:
                continue
            if match := HEADING.match(line):
                classes = NAME.findall(match.group(1))
            elif re.match(r"^\|\s*parameter\s*\|", line):
                names = set()
                for row in lines[number + 2 :]:
                    if not row.startswith("|"):
                        break
                    names |= set(NAME.findall(row.split("|")[1]))
                assert classes, f"{guide.name}:{number + 1}: a parameter table under a heading naming no class"
                for name in classes:
                    tables.setdefault(name, []).append((guide, names))
    return tables


CLASSES = public_classes()
TABLES = parameter_tables()


def test_the_classes_are_found() -> None:
    assert {"PredictionOneTrainOperator", "PredictionOneRetrainSensor", "AitemsTrainOperator"} <= set(CLASSES)
    assert len(CLASSES) >= 16


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_every_operator_and_sensor_has_a_complete_parameter_table(name: str) -> None:
    cls = CLASSES[name]
    assert name in TABLES, f"no guide has a parameter table for {name}"
    required = parameters(cls, ours_only=True)
    existing = parameters(cls, ours_only=False)
    for guide, documented in TABLES[name]:
        missing = sorted(required - documented)
        unknown = sorted(documented - existing)
        assert not missing, f"{guide.name}: {name}'s table lacks {missing}"
        assert not unknown, f"{guide.name}: {name}'s table documents {unknown}, which {name} does not take"


def test_tables_name_only_real_classes() -> None:
    unknown = sorted(set(TABLES) - set(CLASSES) - UNIMPORTABLE)
    assert not unknown, f"parameter tables for classes that do not exist: {unknown}"


@pytest.mark.parametrize("guide", GUIDES, ids=[g.name for g in GUIDES])
def test_every_guide_shows_code_inline(guide: Path) -> None:
    """``literalinclude`` shows nothing where Markdown is read without Sphinx."""
    assert re.search(r"^```python\n", guide.read_text(), flags=re.MULTILINE), f"{guide.name} has no python block"


@pytest.mark.parametrize("guide", GUIDES, ids=[g.name for g in GUIDES])
def test_inline_examples_compile(guide: Path) -> None:
    for number, block in enumerate(re.findall(r"^```python\n(.*?)^```", guide.read_text(), re.DOTALL | re.MULTILINE)):
        compile(block, f"{guide.name} block {number + 1}", "exec")


def test_classifier_id_is_explained() -> None:
    text = (REPO / "docs" / "guides" / "prediction-api.md").read_text()
    assert "`classifier_id`" in text


# --- the API reference -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_reference(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``docs/api.rst`` built by Sphinx with the site's ``conf.py``, alone (the whole site takes longer)."""
    pytest.importorskip("sphinx")
    import subprocess
    import sys

    source = tmp_path_factory.mktemp("api-source")
    conf = REPO / "docs" / "conf.py"
    (source / "conf.py").write_text(
        f"import runpy\nglobals().update(runpy.run_path({str(conf)!r}))\nroot_doc = 'api'\nhtml_static_path = []\n"
    )
    (source / "api.rst").write_text((REPO / "docs" / "api.rst").read_text())
    out = tmp_path_factory.mktemp("api-html")
    built = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-b", "html", str(source), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return (out / "api.html").read_text()


def public_methods() -> list[str]:
    """``module.Class.name`` of every public method and property of the hooks, operators and sensors."""
    from airflow_provider_predone import hooks, operators, sensors

    names = []
    for package in (hooks, operators, sensors):
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_"):
                continue
            try:
                module = importlib.import_module(f"{package.__name__}.{info.name}")
            except ImportError:  # a module for a newer Airflow (human-in-the-loop needs 3.1)
                continue
            for class_name, cls in vars(module).items():
                if not inspect.isclass(cls) or cls.__module__ != module.__name__ or class_name.startswith("_"):
                    continue
                for name, member in vars(cls).items():
                    routine = inspect.isroutine(member) or isinstance(member, property | functools.cached_property)
                    if routine and not name.startswith("_"):
                        names.append(f"{module.__name__}.{class_name}.{name}")
    return names


def test_every_public_hook_operator_and_sensor_method_is_in_the_api_reference(api_reference: str) -> None:
    anchors = set(re.findall(r'id="([^"]+)"', api_reference))
    methods = public_methods()
    assert "airflow_provider_predone.hooks.aitems.AitemsHook.list_services" in methods
    missing = [name for name in methods if name not in anchors]
    assert not missing, f"not in the API reference: {missing}"


def test_no_docstring_field_renders_raw(api_reference: str) -> None:
    """A field list glued to a sentence (``Delete a model. :param model_id: ...``) is shown as text."""
    text = re.sub(r"<[^>]+>", "", api_reference)
    raw = re.findall(r"[^\n]{0,60}:(?:param|type|return|returns|rtype|raises)\b[^\n]{0,60}", text)
    assert not raw, raw


def test_the_contributing_walk_through_names_only_what_exists() -> None:
    """docs/contributing.md: every dotted name it mentions resolves, every included object exists."""
    text = (REPO / "docs" / "contributing.md").read_text()
    names = set(re.findall(r"`(airflow_provider_predone(?:\.\w+)+)`", text))
    assert len(names) >= 15  # the page names what it walks through
    missing = []
    for name in sorted(names):
        parts = name.split(".")
        for split in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                target: object = importlib.import_module(".".join(parts[:split]))
            except ImportError:
                continue
            try:
                for attr in parts[split:]:
                    target = getattr(target, attr)
            except AttributeError:
                missing.append(name)
            break
        else:
            missing.append(name)
    assert not missing, f"docs/contributing.md names what does not exist: {missing}"
    for path, obj in re.findall(r"literalinclude\} \.\./(\S+)\n:language: python\n:pyobject: (\S+)", text):
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        target = module
        for attr in obj.split("."):
            target = getattr(target, attr)
        assert inspect.getsourcefile(target) == str(REPO / path), obj  # type: ignore[arg-type]
    for path in re.findall(r"`(tests/[\w/]+\.py|docs/[\w/]+\.(?:md|rst))`", text):
        assert (REPO / path).exists(), path
