"""Which mel stream a recipe reads: ``mel_profile`` picks duet's own (``ferraro``) or an
imported one (``melon``) for the views that crop at random, and nothing else."""

import pytest

from duet.errors import DuetError
from duet.training.recipe import load_recipe, parse_overrides


@pytest.mark.parametrize("name", ["ferraro", "ferraro-genre", "ferraro-cf"])
def test_ferraro_recipes_read_duets_mel_unless_told_to_read_melons(name):
    default = load_recipe(name)
    assert default["mel_profile"] == "ferraro"
    assert [(v.stream, v.profile) for v in default["views"] if v.stream] == [
        ("mel-ferraro", "ferraro")
    ]
    imported = load_recipe(name, parse_overrides(["mel_profile=melon"]))
    assert [(v.stream, v.profile) for v in imported["views"] if v.stream] == [
        ("mel-melon", "melon")
    ]
    assert [v for v in imported["views"] if not v.stream] == [
        v for v in default["views"] if not v.stream
    ]


def test_alonso_views_both_read_the_chosen_stream():
    recipe = load_recipe("alonso-co", {"mel_profile": "jamendo"})
    assert {(v.stream, v.profile) for v in recipe["views"]} == {("mel-jamendo", "jamendo")}


@pytest.mark.parametrize("name, reason", [
    ("choi-adjacent", "crops at the pair manifest's offsets"),
    ("alonso-simclr", "crops at the pair manifest's offsets"),
    ("clmr", "has no mel view"),
])  # fmt: skip
def test_mel_profile_is_refused_where_it_cannot_apply(name, reason):
    with pytest.raises(DuetError, match=reason):
        load_recipe(name, {"mel_profile": "melon"})
