"""Recipes: ``--set`` overrides, and every recipe learning: its loss falls over a few steps on
one fixed batch and every weight that gets a gradient moves."""

import math

import pytest

from duet.training.loop import RECIPES, parse_overrides
from tests.support.training import fixed_batch_descent


def test_recipe_overrides_parse_numbers_and_reject_unknown_settings():
    got = parse_overrides(["lr=1e-3", "multi_level=true", "backbone=resnet50", "epochs=3"])
    assert got == {"lr": 0.001, "multi_level": True, "backbone": "resnet50", "epochs": 3}
    with pytest.raises(SystemExit, match="unknown recipe setting"):
        parse_overrides(["lrr=1e-3"])
    with pytest.raises(SystemExit, match="key=value"):
        parse_overrides(["lr"])


DATASETS = {"alonso": "dataset", "clmr": "dataset", "pemr": "dataset", "choi": "choi_dataset",
            "ferraro": "ferraro_dataset"}  # fmt: skip


HEAVY = ("clmr", "pemr", "choi-self")  # 59 049-sample crops or device-side augmentation


@pytest.mark.parametrize(
    "recipe", [pytest.param(r, marks=pytest.mark.slow) if r in HEAVY else r for r in RECIPES]
)
def test_each_recipe_lowers_its_loss_on_a_fixed_batch_and_moves_every_weight_it_uses(
    recipe, request
):
    root = request.getfixturevalue(DATASETS[recipe.split("-")[0]])
    descent = fixed_batch_descent(root, recipe, {"warmup_steps": 0})
    assert all(math.isfinite(x) for x in descent.losses)
    assert descent.losses[-1] < descent.losses[0], descent.losses
    assert descent.with_gradient and descent.with_gradient <= descent.moved
