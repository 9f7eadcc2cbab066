"""Hostile records are failures, not crashes: an MPD position past int64, a playlist id used by
more than nine records, Melon song ids that are not ids, and pair runs over tables too small to
pair (before: an OverflowError, record #10 kept, tracks "None"/"True"/"3.5", an empty run
published or a traceback). Each ends in failure rows or one line."""

from __future__ import annotations

import os

import pytest

from tests.support.helpers import cli_error
from tests.support.tables import write_index, write_playlists, write_topk
from tests.test_playlists import mpd_playlist, mpd_slice, run, write_json


def test_an_mpd_position_past_int64_is_a_failure_row(tmp_path):
    huge = mpd_playlist(7, ["a", "b", "c"])
    huge["tracks"][1]["pos"] = 2**63
    write_json(tmp_path / "s.json", mpd_slice([huge, mpd_playlist(8, ["d", "e"])]))
    out = run(tmp_path, [tmp_path / "s.json"], "mpd")
    assert out["playlists"] == {"7": ["a", "c"], "8": ["d", "e"]}
    assert out["dropped"]["invalid_position"]["entries"] == 1
    assert [f["error"] for f in out["failures"]] == [f"pos {2**63} is out of range"]


def test_a_playlist_id_used_twice_keeps_its_first_record_even_past_nine(tmp_path):
    records = [mpd_playlist(100 + i, [f"x{i}", f"y{i}"]) for i in range(12)]
    records[2] = mpd_playlist(5, ["first", "kept"])
    records[10] = mpd_playlist(5, ["tenth", "dropped"])
    write_json(tmp_path / "s.json", mpd_slice(records))
    out = run(tmp_path, [tmp_path / "s.json"], "mpd")
    assert out["playlists"]["5"] == ["first", "kept"]
    assert out["dropped"]["duplicate_playlist_id"]["playlists"] == 1


@pytest.mark.parametrize("bad", [None, True, 3.5, {"id": 1}, [1]])
def test_melon_song_ids_that_are_not_ids_are_failure_rows(tmp_path, bad):
    songs = [{"id": 7, "artist_id_basket": ["ar"], "song_gn_dtl_gnr_basket": ["GN0101"]},
             {"id": bad, "artist_id_basket": ["ar"], "song_gn_dtl_gnr_basket": ["GN0102"]}]  # fmt: skip
    write_json(tmp_path / "melon" / "song_meta.json", songs)
    write_json(tmp_path / "melon" / "train.json", [{"id": 1, "songs": [7, bad, 8]}])
    out = run(tmp_path, [tmp_path / "melon"], "melon")
    assert set(out["meta"]) == {"7", "8"}  # never "None", "True", "3.5"
    assert out["playlists"] == {"1": ["7", "8"]}
    assert out["dropped"]["invalid_track_id"]["entries"] == 1
    assert out["dropped"]["invalid_track_id"]["tracks"] == 1
    assert all("must be a string or an integer" in f["error"] for f in out["failures"])


def test_ids_are_strings_or_integers_in_decimal():
    from duet.schemas import id_text

    assert [id_text(v) for v in ("a", 12, -3, 2**70)] == ["a", "12", "-3", str(2**70)]
    assert [id_text(v) for v in (None, True, False, 3.5, {}, [], b"x")] == [None] * 7


@pytest.mark.parametrize("lists", [[], [["only"]]], ids=["empty", "single-track"])
@pytest.mark.parametrize("strategy", ["playlist_co", "playlist_tco"])
def test_pairs_over_a_table_too_small_to_pair_is_one_line(tmp_path, capsys, lists, strategy):
    root = str(tmp_path / "data")
    write_playlists(root, lists)
    write_topk(root, {"only": []} if lists else {})
    write_index(root, {"only": {"wav-22050": 80_000, "mel-choi": 200}})
    line = cli_error(capsys, ["pairs", "--data", root, "--strategies", strategy, "--epochs", "0:1"])
    assert f"{strategy}: no pairs" in line and "nothing was published" in line
    assert not os.path.exists(os.path.join(root, "pairs", "LATEST"))
