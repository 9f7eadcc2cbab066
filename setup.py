"""Packaging of the fixed top level: ``duet/`` (the core), ``schemas/``, ``pipelines/`` and
``training/`` at the repository root ship as ``duet``, ``duet.schemas``, ``duet.pipelines`` and
``duet.training``, with every subpackage below them found automatically. Everything else about
the distribution lives in pyproject.toml."""

from setuptools import find_packages, setup

ROOTS = {"duet": "duet", "duet.schemas": "schemas", "duet.pipelines": "pipelines",
         "duet.training": "training"}  # fmt: skip


def packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        found += [name, *(f"{name}.{sub}" for sub in find_packages(folder))]
    return found


setup(packages=packages(), package_dir=ROOTS)
