"""The dataset layout: every file a full run of the jobs writes is a path ``duet.layout`` names,
and every job's ``_SUCCESS`` has the one summary shape."""

import os
import re
import shutil

import pytest

from duet import __version__, layout, publish
from duet.cli import main
from duet.pipelines.pairs import runs
from tests.support.tables import write_track_meta

STREAMS = ("wav-16000", "wav-22050", "mel-alonso", "mel-ferraro")
MARKERS = {
    "": "shards",
    layout.PLAYLISTS: "playlists",
    layout.TRACK_META: "playlists",
    layout.COOC["playlist"]: "cooccurrence",
    layout.COOC["artist"]: "cooccurrence",
    layout.embedding_folder("w2v"): "embeddings",
    layout.embedding_folder(layout.cf_model("warp")): "embeddings",
    layout.embedding_folder(layout.GENRE_W2V): "embeddings",
    layout.SPLITS: "splits",
}


@pytest.fixture(scope="module")
def root(catalog, published, tmp_path_factory) -> str:
    """Every job over the sample catalogue, into one dataset root."""
    base = tmp_path_factory.mktemp("layout")
    data = str(base / "data")
    shutil.copytree(published, data)
    genres = write_track_meta(str(base / "genres"), {"a": ["rock", "pop"], "b": ["pop", "jazz"]})
    playlists = os.path.join(data, "playlists.parquet")
    for argv in (
        ["playlists", "--input", os.path.join(catalog, "mpd"), "--format", "mpd", "--output", data,
         "--tracks", data],
        ["cooccurrence", "--playlists", playlists, "--output", data, "--counts"],
        ["cooccurrence", "--playlists", playlists, "--output", data, "--group-by", "artist"],
        ["embeddings", "w2v", "--playlists", playlists, "--output", data, "--epochs", "1"],
        ["embeddings", "cf", "--playlists", playlists, "--output", data, "--factors", "4",
         "--epochs", "1"],
        ["embeddings", "genre-w2v", "--track-meta", genres, "--output", data, "--epochs", "1"],
        ["splits", "--track-meta", os.path.join(data, "track_meta.parquet"), "--output", data],
        ["pairs", "--data", data, "--strategies", "playlist_co,w2v,self", "--epochs", "0:2"],
    ):  # fmt: skip
        assert main(argv) == 0, argv
    return data


def test_every_job_summary_has_the_shared_shape(root):
    run = runs.latest_run(root)
    for folder, job in {**MARKERS, layout.pair_run(run): "pairs"}.items():
        body = publish.require_success(layout.at(root, folder) if folder else root)
        assert body["job"] == job, folder
        assert body["code_version"] == __version__ and isinstance(body["format_version"], int)
        assert isinstance(body["config"], dict) and isinstance(body["counts"], dict)
        assert body["inputs"], folder
        for name, given in body["inputs"].items():
            assert set(given) == {"uri", "fingerprint"}, (folder, name)
            assert len(given["fingerprint"]) == 64


def test_table_summaries_record_their_cost_and_beam_summaries_stay_identical(root):
    for folder in (layout.embedding_folder("w2v"), layout.SPLITS):
        assert publish.require_success(layout.at(root, folder))["wall_time_s"] >= 0
    for folder in ("", layout.PLAYLISTS, layout.COOC["playlist"]):
        assert "wall_time_s" not in publish.require_success(layout.at(root, folder))


def test_every_file_of_a_full_run_is_a_path_the_layout_names(root):
    body = publish.require_success(root)
    run = runs.latest_run(root)
    shards = range(body["num_shards"])
    expected = {layout.MANIFEST_FAILURES, layout.PLAYLISTS_DROPPED, layout.PLAYLISTS_FAILURES,
                layout.LATEST, layout.SPLITS_PART, layout.embedding("w2v"),
                layout.embedding(layout.cf_model("warp")),
                layout.embedding(layout.GENRE_W2V, layout.GENRES),
                layout.embedding(layout.GENRE_W2V, layout.TRACK_GENRES),
                layout.part(layout.PLAYLISTS, 0), layout.part(layout.TRACK_META, 0),
                *(layout.mel_stats(p) for p in ("alonso", "ferraro"))}  # fmt: skip
    for n in shards:
        expected |= {layout.shard(s, n) for s in STREAMS}
        expected |= {layout.part(layout.INDEX, n), layout.part(layout.FAILURES, n),
                     layout.part(layout.REPORTS, n, "json")}  # fmt: skip
    cooc, artist = layout.COOC["playlist"], layout.COOC["artist"]
    expected |= {f"{cooc}/{layout.part(layout.TOPK, 0)}", f"{cooc}/{layout.part(layout.COUNTS, 0)}",
                 f"{artist}/{layout.part(layout.TOPK, 0)}", f"{artist}/{layout.part(layout.GROUPS, 0)}"}  # fmt: skip
    expected |= {layout.pair_manifest(run, s, e) for s in ("playlist_co", "w2v", "self")
                 for e in range(2)}  # fmt: skip
    written, locks = set(), set()
    for folder, _, names in os.walk(root):
        for name in names:
            relative = os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
            if name.startswith(layout.LOCK):
                locks.add(relative)
            elif name != layout.SUCCESS:  # stored names carry a tag: part-00000-<tag>.parquet
                written.add(re.sub(r"-[0-9a-f]{16}(?=\.)", "", relative))
    assert written == expected
    folders = {os.path.dirname(lock) for lock in locks}  # one writer per published folder
    assert all(f == layout.PAIRS or os.path.exists(os.path.join(root, f, layout.SUCCESS))
               for f in folders)  # fmt: skip
