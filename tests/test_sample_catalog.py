"""The built-in sample catalogue: deterministic, realistic, with signal and broken files."""

import itertools
import json
import os

import numpy as np
import pytest

from duet import schemas
from duet.pipelines.audio.decode import decode_file
from duet.sample_catalog import generate, plan_playlists, plan_tracks
from tests.support.helpers import tree


def read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_same_seed_gives_identical_files(tmp_path):
    generate(str(tmp_path / "a"), tracks=3, seed=5, playlists=10)
    generate(str(tmp_path / "b"), tracks=3, seed=5, playlists=10)
    assert tree(str(tmp_path / "a")) == tree(str(tmp_path / "b"))


def test_tracks_cover_codecs_rates_layouts_and_durations(catalog):
    manifest = schemas.read_table(
        os.path.join(catalog, "tracks.parquet"), schemas.TRACK_MANIFEST
    ).to_pylist()
    good = [r for r in manifest if r["track_id"].startswith("duet:track:")]
    assert {os.path.splitext(r["audio_uri"])[1] for r in good} == {
        ".mp3",
        ".flac",
        ".ogg",
        ".wav",
        ".m4a",
    }
    decoded = [decode_file(os.path.join(catalog, r["audio_uri"]), max_seconds=120) for r in good]
    assert {d.sample_rate for d in decoded} == {22050, 44100, 48000}
    assert {d.channels for d in decoded} == {1, 2}
    assert all(9.9 <= d.duration <= 60.1 for d in decoded)
    assert all(r["artist_ids"] and r["genres"] for r in good)


def test_broken_files_are_really_broken(catalog):
    folder = os.path.join(catalog, "broken")
    assert os.path.getsize(os.path.join(folder, "empty.flac")) == 0
    assert read_text(os.path.join(folder, "not-audio.wav")).startswith("This is a text file")
    assert os.path.getsize(os.path.join(folder, "truncated.mp3")) == 1500
    silent = decode_file(os.path.join(folder, "silent.flac"), max_seconds=60)
    assert np.max(np.abs(silent.samples)) == 0


def test_playlists_follow_the_million_playlist_dataset_slice_format(catalog):
    (name,) = os.listdir(os.path.join(catalog, "mpd"))
    assert name.startswith("mpd.slice.0-") and name.endswith(".json")
    data = json.loads(read_text(os.path.join(catalog, "mpd", name)))
    assert set(data["info"]) >= {"generated_on", "slice", "version"}
    for playlist in data["playlists"]:
        assert {"pid", "name", "num_tracks", "collaborative", "tracks"} <= set(playlist)
        assert playlist["num_tracks"] == len(playlist["tracks"])
        assert [t["pos"] for t in playlist["tracks"]] == list(range(len(playlist["tracks"])))
        for t in playlist["tracks"]:
            assert {
                "track_uri",
                "artist_uri",
                "artist_name",
                "track_name",
                "duration_ms",
                "album_uri",
            } <= set(t)


def test_melon_song_meta_has_artist_and_genre_baskets(catalog):
    songs = json.loads(read_text(os.path.join(catalog, "melon", "song_meta.json")))
    assert len(songs) == 10
    assert all(s["artist_id_basket"] and s["song_gn_gnr_basket"][0].startswith("GN") for s in songs)
    playlists = json.loads(read_text(os.path.join(catalog, "melon", "train.json")))
    assert all(set(p) >= {"id", "songs", "tags"} for p in playlists)


@pytest.mark.parametrize("tracks", [40, 400])
def test_playlist_co_occurrence_carries_genre_and_artist_signal(tracks):
    rng = np.random.default_rng(1)
    plan = plan_tracks(tracks, rng)
    playlists = plan_playlists(plan, tracks * 4, rng)
    pairs = [(plan[a], plan[b]) for p in playlists for a, b in itertools.combinations(p, 2)]
    every = list(itertools.combinations(plan, 2))
    for attr, margin in (("genre", 3), ("artist", 3)):
        in_playlists = np.mean([getattr(a, attr) == getattr(b, attr) for a, b in pairs])
        at_random = np.mean([getattr(a, attr) == getattr(b, attr) for a, b in every])
        assert in_playlists > margin * at_random, (attr, in_playlists, at_random)


def test_zero_tracks_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        generate(str(tmp_path), tracks=0)
