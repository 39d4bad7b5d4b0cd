"""The release artefacts: ``python -m build`` makes a wheel and an sdist that ``twine check`` accepts,
holding the package, its licence and provider metadata and nothing of the repository's tooling.

``make wheel`` goes further: it installs the built wheel into a new virtualenv with the oldest
supported Airflow and runs a DAG there (scripts/wheel_check.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from airflow_provider_predone import __version__
from airflow_provider_predone.get_provider_info import get_provider_info

REPO = Path(__file__).resolve().parent.parent
TOOLING = ("tests/", "benchmarks/", "scripts/", ".demo/", "example_dags/", "docs/", ".ci/")


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist, and the wheel built from it (what ``python -m build`` does), in a temp dir.

    Built from a copy of the checkout: setuptools writes ``build/`` and ``*.egg-info`` beside the
    sources, and pytest-xdist may run this fixture in two workers at once.
    """
    out = tmp_path_factory.mktemp("dist")
    source = out / "source"
    skip = shutil.ignore_patterns(".git", ".venv*", ".demo", "build", "*.egg-info", "__pycache__", "_build", ".*_cache")
    shutil.copytree(REPO, source, ignore=skip, symlinks=True)
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def test_twine_check_passes(dist: dict[str, Path]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dist["wheel"]), str(dist["sdist"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2


def test_the_wheel_holds_the_package_and_its_metadata_only(dist: dict[str, Path]) -> None:
    assert dist["wheel"].name == f"airflow_provider_predone-{__version__}-py3-none-any.whl"
    info = f"airflow_provider_predone-{__version__}.dist-info/"
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        names = wheel.namelist()
        entry_points = wheel.read(info + "entry_points.txt").decode()
        licence = wheel.read(info + "licenses/LICENSE").decode()
    assert "airflow_provider_predone/py.typed" in names
    for facet in ("PredictionOneModelDatasetFacet", "PredictionOneJobRunFacet"):  # the facets' schemas (lineage.py)
        assert f"airflow_provider_predone/openlineage_schemas/{facet}.json" in names
    for module in ("get_provider_info.py", "hooks/predone.py", "triggers/base.py", "emulator/__main__.py"):
        assert f"airflow_provider_predone/{module}" in names
    strays = [name for name in names if not name.startswith(("airflow_provider_predone/", info))]
    assert strays == []
    assert not [name for name in names if any(f"/{part}" in f"/{name}" for part in TOOLING)]
    provider = "airflow_provider_predone.get_provider_info:get_provider_info"
    assert f"[apache_airflow_provider]\nprovider_info = {provider}" in entry_points
    assert "predone-emulator = airflow_provider_predone.emulator.__main__:main" in entry_points
    assert licence == (REPO / "LICENSE").read_text()
    assert "Apache License" in licence
    assert "Version 2.0, January 2004" in licence


def test_the_sdist_holds_the_licence_and_no_tooling(dist: dict[str, Path]) -> None:
    root = f"airflow_provider_predone-{__version__}/"
    with tarfile.open(dist["sdist"]) as sdist:
        names = [name.removeprefix(root) for name in sdist.getnames()]
    assert {"LICENSE", "pyproject.toml", "DESCRIPTION.md", "airflow_provider_predone/py.typed"} <= set(names)
    assert not [name for name in names if name.startswith(TOOLING)]


def test_the_pypi_page_works_for_someone_who_installed_the_wheel(dist: dict[str, Path]) -> None:
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        metadata = Parser().parsestr(wheel.read(f"airflow_provider_predone-{__version__}.dist-info/METADATA").decode())
    assert metadata["Version"] == __version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_all("Project-URL")
    description = metadata.get_payload()
    assert "pip install airflow-provider-predone" in description
    assert "make " not in description  # repository tooling a wheel user does not have
    targets = re.findall(r"\]\(([^)]*)\)", description)
    assert all(target.startswith("https://") for target in targets), targets


def test_one_version_everywhere() -> None:
    from airflow_provider_predone.hooks._http import _USER_AGENT

    assert get_provider_info()["versions"] == [__version__]
    assert _USER_AGENT.split("/") == ["airflow-provider-predone", __version__]
    changelog = (REPO / "docs" / "changelog.md").read_text()
    releases = re.findall(r"^## (\S+)", changelog, flags=re.MULTILINE)
    assert releases[0] == __version__, "docs/changelog.md needs an entry for the version being released"


def test_the_documented_airflow_3_0_6_pins_are_the_ones_ci_installs() -> None:
    pins = [
        line.strip()
        for line in (REPO / ".ci" / "constraints-3.0.6.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(pins) == 4
    for page in ("docs/installation.md", "DESCRIPTION.md"):
        text = (REPO / page).read_text()
        recipe = re.search(r'pip install airflow-provider-predone "apache-airflow==3\.0\.6" \\\n(.*)\n', text)
        assert recipe is not None, page
        assert recipe.group(1).split() == [f'"{pin}"' for pin in pins], page


def test_the_wheel_carries_the_classifiers_airflows_own_providers_carry(dist: dict[str, Path]) -> None:
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        metadata = Parser().parsestr(wheel.read(f"airflow_provider_predone-{__version__}.dist-info/METADATA").decode())
    classifiers = metadata.get_all("Classifier") or []
    assert {
        "Development Status :: 4 - Beta",
        "Framework :: Apache Airflow :: Provider",
        "Intended Audience :: Developers",
        "Intended Audience :: System Administrators",
        "Programming Language :: Python :: 3.11",
        "Typing :: Typed",
    } <= set(classifiers)
    python = re.compile(r"Programming Language :: Python :: (3\.\d+)")
    pythons = [match[1] for match in map(python.fullmatch, classifiers) if match]
    assert all(int(version.split(".")[1]) >= 11 for version in pythons), pythons  # requires-python >= 3.11
    assert not [c for c in classifiers if c.startswith("License ::")]  # PEP 639: License-Expression says it
