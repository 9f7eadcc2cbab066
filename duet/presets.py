"""Settings declared in YAML: one safe loader, and presets shipped beside a module or given as
a file, for every kind of them (mel profiles, imported feature profiles, training recipes).

The loader is PyYAML's ``SafeLoader`` (no objects from data) where ``1e-3`` is a number too:
YAML 1.1 reads only ``1.0e-3`` as a float, so ``amin: 1e-10`` or ``lr: 3e-4`` would otherwise
arrive as strings.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Iterable
from importlib import resources
from typing import Any, TypeVar

import yaml

from duet.errors import DuetError

T = TypeVar("T")


class _Loader(yaml.SafeLoader):
    """Safe YAML where ``1e-3`` is a number too."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str) -> Any:
    """Parse YAML safely (no arbitrary objects), reading ``1e-3`` as a float."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass


def from_yaml(cls: type[T], text: str, default_name: str, kind: str,
              error: type[DuetError], required: Iterable[str] = ()) -> T:  # fmt: skip
    """A ``kind`` (``"mel profile"``) declared in YAML as the fields of dataclass ``cls``;
    ``name`` defaults to ``default_name`` (the file's stem).

    Raises:
        error: not a mapping, a field ``cls`` does not have, or a ``required`` field missing.
    """
    data = load_yaml(text) or {}
    if not isinstance(data, dict):
        raise error(f"a {kind} YAML must be a mapping of parameters")
    data.setdefault("name", default_name)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if unknown := sorted(set(data) - known):
        raise error(f"unknown {kind} parameter(s): {', '.join(unknown)} "
                    f"(known: {', '.join(sorted(known))})")  # fmt: skip
    if missing := sorted(set(required) - set(data)):
        raise error(f"{kind} {data['name']}: missing {', '.join(missing)}")
    return cls(**data)


def shipped(package: str, folder: str, cls: type[T], kind: str, error: type[DuetError],
            required: Iterable[str] = ()) -> dict[str, T]:  # fmt: skip
    """Every ``*.yaml`` preset in ``folder`` of ``package``, by its name."""
    found: dict[str, T] = {}
    for entry in resources.files(package).joinpath(folder).iterdir():
        if entry.name.endswith(".yaml"):
            preset = from_yaml(cls, entry.read_text(), entry.name[: -len(".yaml")], kind, error,
                               required)  # fmt: skip
            found[getattr(preset, "name")] = preset  # noqa: B009 - every preset class has a name
    return found


def resolve(spec: str, presets: dict[str, T], cls: type[T], kind: str, error: type[DuetError],
            required: Iterable[str] = ()) -> T:  # fmt: skip
    """A preset by name, or the path of a YAML file declaring one.

    Raises:
        error: neither (naming the closest preset), or a file that does not declare one.
    """
    if spec in presets:
        return presets[spec]
    if spec.endswith((".yaml", ".yml")) and os.path.isfile(spec):
        with open(spec) as f:
            name = os.path.splitext(os.path.basename(spec))[0]
            return from_yaml(cls, f.read(), name, kind, error, required)
    close = difflib.get_close_matches(spec, list(presets), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise error(f"unknown {kind} {spec!r} ({hint}presets: {', '.join(sorted(presets))}; or "
                "the path of a YAML file)")  # fmt: skip
