"""Recipes: one typed settings class per system, the shipped YAML presets, and ``--set``.

A recipe is a YAML preset in ``training/recipes/`` (or a user's YAML file) whose ``system``
(default ``contrastive``) picks one settings class below. Each class declares every setting its
system reads, with the default that system uses when a recipe leaves it out, so a default is
written once; a setting the chosen system does not read — in the file or through ``--set`` — is
an error naming the settings it does read, never silently ignored. Papers and sections for the
values are in each preset's comments.

Readers get a plain dict (the recipe as YAML would give it, defaults filled in, ``views`` as
``training.data.View``) so checkpoints record exactly what trained.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from duet.errors import DuetError
from duet.presets import load_yaml
from duet.training.data import View

RECIPES = tuple(sorted(
    p.name.removesuffix(".yaml") for p in resources.files("duet.training").joinpath("recipes").iterdir()
    if p.name.endswith(".yaml")
))  # fmt: skip


class RecipeError(DuetError):
    """A recipe file or ``--set`` override that the chosen system cannot use."""


@dataclass(kw_only=True)
class Common:
    """What every system reads: the pair strategy and views it trains on, and the optimiser's
    schedule (Adam at ``lr``, linear warm-up over ``warmup_steps`` then cosine decay)."""

    strategy: str
    views: list[dict]
    lr: float
    batch_size: int
    epochs: int
    warmup_steps: int = 0
    mel_profile: str | None = None  # re-points mel views at mel-<profile> (training.recipe)


@dataclass(kw_only=True)
class Contrastive(Common):
    """SimCLR-style two-view NT-Xent (CLMR, Alonso-Jiménez et al.): backbone → projector."""

    backbone: str
    projector: dict[str, int]
    temperature: float = 0.1
    augment: str | None = None  # "clmr": CLMR's waveform augmentation chain
    sample_rate: int | None = None  # of waveform views, for the augmentation chain


@dataclass(kw_only=True)
class Choi(Common):
    """Choi et al.'s self / adjacent / random segment pairs: 5-layer CNN, NT-Xent per level."""

    backbone: str = "choi"
    temperature: float = 0.1
    dim: int = 128
    multi_level: bool = False
    augment: str | None = None  # "choi": waveforms augmented twice, mel on the device
    profile: str = "choi"  # mel profile of the device-side mel and its statistics


@dataclass(kw_only=True)
class ChoiCPC(Common):
    """Choi et al.'s MelCPC: CNN segments, a GRU context and InfoNCE on future segments."""

    backbone: str = "choi"
    temperature: float = 0.1
    dim: int = 128
    context: int = 256
    segment: int = 188  # frames per segment
    predict_steps: int = 2  # ours: the paper's k is not in SPEC


@dataclass(kw_only=True)
class Ferraro(Common):
    """Ferraro et al.: audio, genre and CF encoders into one space, NT-Xent per modality pair."""

    temperature: float = 0.1
    dim: int = 256
    genre_vector_size: int | None = None  # checked against the genre table (Ferraro et al.: 200)


@dataclass(kw_only=True)
class PEMR(Common):
    """PEMR (Yao et al.): frame Transformer + Barlow Twins on attention-chosen frames."""

    mel: dict[str, Any]
    projector: dict[str, int]
    transformer: dict[str, int] = field(
        default_factory=lambda: {"dim": 192, "layers": 3, "heads": 3}
    )
    mask_ratio: float = 0.1
    reconstruction_mask: float = 0.15
    off_diagonal_weight: float = 5e-3
    negative_weight: float = 1.0


SYSTEMS: dict[str, type[Common]] = {
    "contrastive": Contrastive, "choi": Choi, "choi-cpc": ChoiCPC, "ferraro": Ferraro,
    "pemr": PEMR,
}  # fmt: skip


def settings(system: str) -> list[str]:
    """Every setting ``system`` reads (``system`` and the class's fields)."""
    return ["system", *(f.name for f in dataclasses.fields(SYSTEMS[system]))]


def preset(name: str) -> dict:
    """The shipped preset ``training/recipes/<name>.yaml`` as written."""
    return load_yaml(resources.files("duet.training").joinpath(f"recipes/{name}.yaml").read_text())


def parse_overrides(items: list[str]) -> dict:
    """``key=value`` strings → recipe overrides. Values are YAML (``1e-3`` is a number). Which
    keys the chosen recipe accepts is checked by :func:`load_recipe`.

    Raises:
        RecipeError: an item without ``=``.
    """
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise RecipeError(f"--set {item!r}: expected key=value")
        out[key] = load_yaml(text)
    return out


_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "float": (int, float), "bool": (bool,),
}  # fmt: skip


def _check_type(name: str, key: str, value: Any, annotation: str, source: str) -> Any:
    """``value`` as ``annotation`` declares it (ints where floats are asked become floats)."""
    optional = annotation.endswith("| None")
    base = annotation.removesuffix(" | None")
    if value is None and optional:
        return value
    if base.startswith(("dict", "list")):
        kind = dict if base.startswith("dict") else list
        if isinstance(value, kind):
            return value
        raise RecipeError(f"{source}{key}: expected a {kind.__name__} in recipe {name}, "
                          f"got {value!r}")  # fmt: skip
    wanted = _TYPES[base]
    if isinstance(value, bool) and base != "bool" or not isinstance(value, wanted):
        raise RecipeError(f"{source}{key}={value!r}: recipe {name} needs a {base}")
    return float(value) if base == "float" and isinstance(value, int) else value


def _typed(name: str, recipe: dict, overrides: dict) -> dict:
    """``recipe`` checked against its system's settings class, defaults filled in."""
    system = recipe.get("system", "contrastive")
    if system not in SYSTEMS:
        raise RecipeError(f"recipe {name}: unknown system {system!r}; one of {', '.join(SYSTEMS)}")
    known = settings(system)
    for key in recipe:
        if key not in known:
            source = "--set " if key in overrides else ""
            raise RecipeError(f"{source}{key}: not a setting of recipe {name} (system {system}); "
                              f"it reads {', '.join(known)}")  # fmt: skip
    fields = {f.name: f for f in dataclasses.fields(SYSTEMS[system])}
    values = {}
    for key, value in recipe.items():
        if key == "system":
            continue
        source = "--set " if key in overrides else ""
        value = _check_type(name, key, value, str(fields[key].type), source)
        factory = fields[key].default_factory
        if isinstance(value, dict) and callable(factory):
            default = factory()
            if unknown := sorted(set(value) - set(default)):
                raise RecipeError(f"{source}{key}: recipe {name} has no {key} setting "
                                  f"{', '.join(unknown)}; it has {', '.join(default)}")  # fmt: skip
            value = {**default, **value}  # a partial override keeps the other defaults
        values[key] = value
    try:
        typed = SYSTEMS[system](**values)
    except TypeError as e:  # a required setting is missing
        missing = [k for k, f in fields.items() if k not in values
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]  # fmt: skip
        raise RecipeError(f"recipe {name} (system {system}) misses {', '.join(missing)}") from e
    return {"system": system, **dataclasses.asdict(typed)}


def load_recipe(name: str, overrides: dict | None = None) -> dict:
    """A preset from ``training/recipes/<name>.yaml`` (or a YAML file path) plus ``--set``
    overrides, typed by its system's settings class.

    Returns:
        The recipe as a dict: every setting of its system (defaults filled in), ``name``, and
        ``views`` as a tuple of ``training.data.View``.

    Raises:
        RecipeError: an unknown recipe or system, a setting the system does not read, a value
        of the wrong type, a missing required setting, or a ``mel_profile`` that cannot apply.
    """
    overrides = overrides or {}
    if name.endswith((".yaml", ".yml")):
        with open(name) as f:
            recipe = load_yaml(f.read())
        if not isinstance(recipe, dict):
            raise RecipeError(f"{name}: expected a YAML mapping of recipe settings")
    else:
        if name not in RECIPES:
            raise RecipeError(f"unknown recipe {name!r}; one of {', '.join(RECIPES)} "
                              f"(duet recipes lists them), or a YAML file")  # fmt: skip
        recipe = preset(name)
    short = os.path.basename(name).split(".")[0]
    recipe = {**_typed(short, {**recipe, **overrides}, overrides), "name": short}
    views = [dict(v) for v in recipe["views"]]
    if recipe["mel_profile"] is not None:
        views = select_mel(views, str(recipe["mel_profile"]), short)
    recipe["views"] = tuple(View(**v) for v in views)
    return recipe


def select_mel(views: list[dict], profile: str, recipe: str) -> list[dict]:
    """The recipe's mel views reading ``mel-<profile>`` (standardised by that profile's
    statistics): ``mel_profile: ferraro`` is duet's own mel computed from audio, ``melon`` the
    Melon Playlist Dataset's arrays imported by ``duet features import``. Views cropped at the
    pair manifest's offsets keep the stream the pairs were made on."""
    mel = [v for v in views if str(v.get("stream") or "").startswith("mel-")]
    if not mel:
        raise RecipeError(f"recipe {recipe} has no mel view; mel_profile does not apply")
    if any(v.get("offsets", "random") != "random" for v in mel):
        raise RecipeError(f"recipe {recipe} crops at the pair manifest's offsets, which belong "
                          f"to the stream the pairs were made on; mel_profile does not apply")  # fmt: skip
    return [{**v, "stream": f"mel-{profile}", "profile": profile} if v in mel else v
            for v in views]  # fmt: skip


ENCODERS = {"choi": "choi 5-conv", "choi-cpc": "choi 5-conv + GRU", "ferraro": "ferraro 7-conv",
            "pemr": "fcn4 + transformer"}  # fmt: skip
"""The audio encoder of each system whose backbone is fixed (``contrastive`` names its own)."""


def describe(name: str) -> dict[str, str]:
    """One row of ``duet recipes``: the recipe's system, strategy, streams (and embedding
    tables), encoder and crop lengths."""
    recipe = load_recipe(name)
    views = recipe["views"]
    streams = [v.stream for v in views if v.stream]
    tables = [v.table or v.genres for v in views if not v.stream and (v.table or v.genres)]
    crops = sorted({f"{v.length} {'frames' if v.stream.startswith('mel-') else 'samples'}"
                    for v in views if v.stream})  # fmt: skip
    return {
        "recipe": name,
        "system": recipe["system"],
        "strategy": recipe["strategy"],
        "streams": ", ".join(dict.fromkeys(streams + tables)),
        "encoder": ENCODERS.get(recipe["system"], str(recipe.get("backbone"))),
        "crop": ", ".join(crops) or "-",
    }
