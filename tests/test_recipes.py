"""Recipes: ``--set`` overrides, and every recipe learning: its loss falls over a few steps on
one fixed batch and every weight that gets a gradient moves."""

import math

import pytest

from duet.training import recipe as recipes
from duet.training.recipe import RECIPES, RecipeError, load_recipe, parse_overrides
from tests.support.training import fixed_batch_descent


def test_recipe_overrides_parse_yaml_values_and_numbers_like_1e_3():
    got = parse_overrides(["lr=1e-3", "multi_level=true", "backbone=resnet50", "epochs=3"])
    assert got == {"lr": 0.001, "multi_level": True, "backbone": "resnet50", "epochs": 3}
    with pytest.raises(RecipeError, match="key=value"):
        parse_overrides(["lr"])


def test_a_setting_the_chosen_system_does_not_read_is_refused_not_ignored():
    with pytest.raises(RecipeError, match="--set mask_ratio: not a setting of recipe alonso-co"):
        load_recipe("alonso-co", parse_overrides(["mask_ratio=0.2"]))
    with pytest.raises(RecipeError, match="--set lrr: not a setting"):
        load_recipe("clmr", parse_overrides(["lrr=1e-3"]))
    assert load_recipe("pemr", parse_overrides(["mask_ratio=0.2"]))["mask_ratio"] == 0.2


def test_a_value_of_the_wrong_type_is_refused_with_the_type_wanted():
    with pytest.raises(RecipeError, match="--set lr='abc': recipe clmr needs a float"):
        load_recipe("clmr", parse_overrides(["lr=abc"]))
    with pytest.raises(RecipeError, match="needs a int"):
        load_recipe("clmr", parse_overrides(["batch_size=true"]))
    assert load_recipe("clmr", {"lr": 1})["lr"] == 1.0


def test_every_shipped_recipe_is_typed_by_its_system_with_defaults_written_once():
    for name in RECIPES:
        recipe = load_recipe(name)
        assert set(recipe) == set(recipes.settings(recipe["system"])) | {"name"}, name
    assert load_recipe("choi-cpc")["dim"] == recipes.ChoiCPC.dim == 128
    assert load_recipe("ferraro")["dim"] == recipes.Ferraro.dim


def test_a_partial_nested_override_keeps_the_other_defaults():
    got = load_recipe("pemr", parse_overrides(["transformer={layers: 1}"]))["transformer"]
    assert got == {"dim": 192, "layers": 1, "heads": 3}
    with pytest.raises(RecipeError, match="has no transformer setting depth"):
        load_recipe("pemr", {"transformer": {"depth": 2}})


def test_a_recipe_file_missing_a_required_setting_names_it(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("strategy: self\nviews: []\nbatch_size: 8\nepochs: 1\nbackbone: sample_cnn\n"
                    "projector: {hidden: 8, out: 8}\n")  # fmt: skip
    with pytest.raises(RecipeError, match="recipe mine .system contrastive. misses lr"):
        load_recipe(str(path))


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
