"""The distribution: the wheel ships every module and data file of the source tree."""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDERS = {"duet": "duet", "schemas": "duet/schemas", "pipelines": "duet/pipelines",
           "training": "duet/training"}  # fmt: skip
SHIPPED = (".py", ".yaml")


def source_files() -> set[str]:
    """Every module and data file below the four top-level folders, by its path in the wheel."""
    found = set()
    for folder, package in FOLDERS.items():
        for dirpath, dirnames, names in os.walk(os.path.join(ROOT, folder)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            relative = os.path.relpath(dirpath, os.path.join(ROOT, folder))
            for name in names:
                if name.endswith(SHIPPED):
                    found.add(os.path.normpath(os.path.join(package, relative, name)))
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """A wheel built offline from a clean copy of the sources (no stale build/ folder)."""
    tree = tmp_path_factory.mktemp("sdist") / "duet"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        os.makedirs(tree, exist_ok=True)
        shutil.copy(os.path.join(ROOT, name), tree / name)
    for folder in FOLDERS:
        shutil.copytree(os.path.join(ROOT, folder), tree / folder, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--wheel-dir", str(out), str(tree)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (built,) = out.iterdir()
    return zipfile.ZipFile(built)


def test_wheel_ships_every_module_and_data_file_of_the_source_tree(wheel):
    shipped = {n for n in wheel.namelist() if n.endswith(SHIPPED)}
    expected = source_files()
    assert expected - shipped == set(), "modules missing from the wheel"
    assert shipped - expected == set(), "files in the wheel that the sources do not have"
    assert {"duet/pipelines/audio/profiles/choi.yaml", "duet/training/recipes/clmr.yaml"} <= shipped


def test_wheel_declares_the_duet_command(wheel):
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
    assert "duet = duet.cli:main" in wheel.read(name).decode()
