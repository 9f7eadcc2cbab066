"""The source tree: the wheel ships every module and data file; no module is over 500 lines;
no two modules import each other; command modules never import the entry point, which loads
nothing heavy."""

import ast
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


def modules() -> dict[str, str]:
    """Dotted name → path of every module of the four packages."""
    found = {}
    for folder, package in FOLDERS.items():
        for dirpath, dirnames, names in os.walk(os.path.join(ROOT, folder)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            relative = os.path.relpath(dirpath, os.path.join(ROOT, folder))
            parts = package.split("/") + ([] if relative == "." else relative.split(os.sep))
            for name in names:
                if name.endswith(".py"):
                    stem = [] if name == "__init__.py" else [name[:-3]]
                    found[".".join(parts + stem)] = os.path.join(dirpath, name)
    return found


def imports(path: str, known: dict[str, str]) -> set[str]:
    """The modules of ``known`` that ``path`` imports anywhere in it (functions included)."""
    with open(path) as f:
        tree = ast.parse(f.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found & set(known)


def test_no_source_file_is_over_500_lines():
    long = []
    for folder in (*FOLDERS, "tests", "docker"):
        for dirpath, _, names in os.walk(os.path.join(ROOT, folder)):
            for name in names:
                if name.endswith(".py"):
                    with open(os.path.join(dirpath, name)) as f:
                        if (n := sum(1 for _ in f)) > 500:
                            long.append(
                                f"{os.path.relpath(os.path.join(dirpath, name), ROOT)}: {n}"
                            )
    assert long == []


def test_library_code_never_raises_system_exit():
    """User errors are DuetErrors, turned into one line and an exit status in one place (the
    command line's boundary), never a SystemExit from deep inside a job."""
    raising = []
    for name, path in modules().items():
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None:
                called = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(called, ast.Name) and called.id == "SystemExit":
                    raising.append(f"{name}:{node.lineno}")
    assert raising == []


def test_no_two_modules_import_each_other():
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    mutual = sorted({tuple(sorted((a, b))) for a, targets in graph.items() for b in targets
                     if a in graph.get(b, set())})  # fmt: skip
    assert mutual == []


def test_command_modules_never_import_the_entry_point():
    known = modules()
    for name, path in known.items():
        if name.startswith("duet.cli.") and name != "duet.cli.__main__":
            assert "duet.cli" not in imports(path, known), name


@pytest.mark.parametrize("argv", [["--help"], ["doctor"], ["evaluate", "--help"]])
def test_commands_that_need_neither_beam_nor_torch_do_not_load_them(argv):
    code = (f"import sys\nfrom duet.cli import main\ntry:\n    main({argv!r})\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('apache_beam', 'torch') if m in sys.modules))")  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    loaded = result.stdout.strip().splitlines()[-1]
    assert loaded == "[]", result.stderr[-500:]
