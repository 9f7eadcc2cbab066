"""Co-occurrence: property tests against the brute-force reference, and the Beam job."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duet import publish, schemas
from duet.hashing import tie_key, track_key
from duet.pipelines import csr
from duet.pipelines.beam_io import make_pipeline
from duet.pipelines.cooccurrence import job as cooc
from tests.support import cooc_reference as ref
from tests.support.helpers import listed_names

TRACKS = [f"t{i}" for i in range(12)] + ["ü-ñ", "a/../b", "x" * 300]
playlist_sets = st.lists(st.lists(st.sampled_from(TRACKS), min_size=0, max_size=9), max_size=14)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def compute(playlists: list[list[str]], k: int, seed: int = 0, min_count: int = 1, blocks: int = 1,
            counts: bool = False) -> tuple[list[tuple], list[tuple]]:  # fmt: skip
    """The job's pure functions end to end, without Beam: (top-K rows, count rows)."""
    lists = pa.array(playlists, pa.list_(pa.string()))
    per_block = defaultdict(list)
    for half in (lists[: len(lists) // 2], lists[len(lists) // 2 :]):  # two input chunks
        chunk = cooc.encode(half, max_tracks=10_000)
        if chunk.n_rows:
            for b, part in cooc.split_blocks(chunk, blocks):
                per_block[b].append(part)
    top, pairs = [], []
    for b, chunks in sorted(per_block.items()):
        block = cooc.Block.build(chunks, b, blocks)
        top += block_rows(cooc.block_topk(block, k, min_count, seed, n_chunks=4))
        if counts:
            for batch in cooc.count_batches(block, min_count, n_chunks=4, max_slots=7):
                pairs += block_rows(batch)
    return sorted(top, key=lambda r: (r[0], r[1])), sorted(pairs)


def block_rows(table: pa.Table) -> list[tuple]:
    return [tuple(r.values()) for r in table.to_pylist()]


@SETTINGS
@given(playlist_sets, st.integers(1, 5), st.integers(0, 2**40), st.integers(1, 3))
def test_topk_equals_the_brute_force_reference(playlists, k, seed, min_count):
    top, _ = compute(playlists, k, seed, min_count)
    assert top == ref.top_k(playlists, k, seed, min_count)


@SETTINGS
@given(playlist_sets, st.integers(1, 3))
def test_counts_equal_the_brute_force_reference(playlists, min_count):
    _, pairs = compute(playlists, 3, min_count=min_count, counts=True)
    expected = sorted(
        (a, b, c) for (a, b), c in ref.pair_counts(playlists).items() if c >= min_count
    )
    assert pairs == expected


@SETTINGS
@given(playlist_sets, st.integers(1, 4), st.integers(2, 5))
def test_block_count_does_not_change_the_output(playlists, k, blocks):
    assert compute(playlists, k, blocks=blocks, counts=True) == compute(playlists, k, counts=True)


@SETTINGS
@given(playlist_sets)
def test_topk_is_symmetric_and_has_no_self_pairs(playlists):
    top, _ = compute(playlists, k=len(TRACKS))
    seen = {(a, n): c for a, _, n, c in top}
    assert all(a != n for a, n in seen)
    assert all(seen[(n, a)] == c for (a, n), c in seen.items())


def test_ties_are_broken_by_the_documented_seeded_rule():
    playlists = [["a", "b", "c", "d", "e"]]  # every pair has count 1: all ties
    for seed in (0, 1, 2):
        top, _ = compute(playlists, k=4, seed=seed)
        order = [n for a, _, n, _ in top if a == "a"]
        assert order == sorted("bcde", key=lambda n: tie_key(seed, "a", n))
    orders = {
        tuple(n for a, _, n, _ in compute(playlists, 4, seed=s)[0] if a == "a") for s in range(8)
    }
    assert len(orders) > 1  # the seed matters


def test_compiled_key_equals_the_documented_python_key():
    ids = pa.array(["", "a", "spotify:track:4uLU6hMCjMI75M1A2tKUQC", "ü-ñ", "x" * 5000])
    assert csr.string_keys(ids).tolist() == [track_key(s) for s in ids.to_pylist()]
    assert csr.string_keys(ids.slice(2, 2)).tolist() == [track_key(s) for s in ids.to_pylist()[2:4]]


def test_encode_counts_repeats_invalid_ids_and_skipped_playlists():
    lists = pa.array(
        [["a", "b", "a"], ["a"], None, ["a", None, "", "c"], ["a"] * 3 + ["b", "c", "d"]]
    )
    chunk = cooc.encode(lists, max_tracks=5)
    assert dict(chunk.stats) == {"groups_read": 4, "groups_too_long": 1, "invalid_entries": 2,
                                 "repeated_entries": 1, "groups_too_short": 1, "groups_used": 2,
                                 "entries_used": 4}  # fmt: skip


def test_hash_collision_is_an_error_not_a_silent_merge():
    a = cooc.encode(pa.array([["x", "y"]]), 10)
    b = cooc.encode(pa.array([["z", "y"]]), 10)
    b.keys = b.keys.copy()
    b.keys[b.ids.to_pylist().index("z")] = a.keys[a.ids.to_pylist().index("x")]
    with pytest.raises(cooc.HashCollision, match="share a 64-bit key"):
        cooc.merge([a, b])


def test_artist_groups_list_each_artists_distinct_tracks_in_id_order():
    meta = pa.table({"track_id": ["t2", "t1", "t3", "t4"],
                     "artist_ids": [["A", "B"], ["A"], [], ["A", ""]], "genres": [[], [], [], []]})  # fmt: skip
    groups = cooc.artist_groups(cooc.artist_tracks(meta))
    assert groups.to_pylist() == [
        {"playlist_id": "A", "track_ids": ["t1", "t2", "t4"], "source": "artist"},
        {"playlist_id": "B", "track_ids": ["t2"], "source": "artist"},
    ]


# ---------------------------------------------------------------- the Beam job


def write_playlists(path, playlists: list[list[str]], row_group_size: int = 3) -> str:
    import pyarrow.parquet as pq

    table = pa.table({"playlist_id": [str(i) for i in range(len(playlists))],
                      "track_ids": playlists, "source": ["test"] * len(playlists)},
                     schema=schemas.PLAYLISTS)  # fmt: skip
    pq.write_table(table, str(path), row_group_size=row_group_size)
    return str(path)


def random_playlists(n: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [
        [f"track-{int(t)}" for t in rng.zipf(1.6, rng.integers(2, 12)) if t < 200] for _ in range(n)
    ]


def test_counts_are_computed_batch_by_batch_as_they_are_written(tmp_path, monkeypatch):
    playlists = random_playlists(60, 3)
    chunk = cooc.encode(pa.array(playlists, pa.list_(pa.string())), max_tracks=10_000)
    block = cooc.Block.build([chunk], 0, 1)
    calls = []
    pair_counts = cooc.kernels.pair_counts
    monkeypatch.setattr(cooc.kernels, "pair_counts", lambda *a: calls.append(1) or pair_counts(*a))
    batches = cooc.count_batches(block, 1, n_chunks=2, max_slots=40)
    first = next(batches)
    assert len(calls) == 1  # the other batches are computed as the writer asks for them
    path = str(tmp_path / "counts.parquet")
    rows = schemas.write_tables(path, schemas.COOCCURRENCE, itertools.chain([first], batches))
    assert len(calls) > 3 and pq.ParquetFile(path).metadata.num_row_groups == len(calls)
    written = block_rows(schemas.read_table(path, schemas.COOCCURRENCE))
    assert rows == len(written) and written == sorted(written)
    assert written == sorted((a, b, c) for (a, b), c in ref.pair_counts(playlists).items())


def run_job(**kwargs) -> dict:
    pipeline = make_pipeline(kwargs.pop("beam_args", []))
    job = cooc.CoocJob(**kwargs)
    cooc.build(pipeline, job)
    pipeline.run().wait_until_finish()
    return publish.require_success(job.folder)


def test_job_matches_the_reference_and_publishes_counts(tmp_path):
    playlists = random_playlists(60, 0)
    source = write_playlists(tmp_path / "playlists.parquet", playlists)
    body = run_job(source=source, output=str(tmp_path / "out"), top_k=5, counts=True, seed=7)
    folder = tmp_path / "out" / "cooc"
    top = schemas.read_table(str(folder / "topk.parquet"), schemas.TOPK)
    assert block_rows(top) == ref.top_k(playlists, 5, seed=7)
    pairs = block_rows(schemas.read_table(str(folder / "counts.parquet"), schemas.COOCCURRENCE))
    assert sorted(pairs) == sorted((a, b, c) for (a, b), c in ref.pair_counts(playlists).items())
    assert body["counts"]["topk_rows"] == top.num_rows and body["counts"]["pairs"] == len(pairs)


def test_job_output_is_identical_across_blocks_and_worker_counts(tmp_path):
    source = write_playlists(tmp_path / "p.parquet", random_playlists(80, 1))
    run_job(source=source, output=str(tmp_path / "one"), counts=True)
    run_job(source=source, output=str(tmp_path / "many"), counts=True, blocks=3,
            beam_args=["--direct_num_workers", "2", "--direct_running_mode", "multi_threading"])  # fmt: skip
    for table, schema in (("topk.parquet", schemas.TOPK), ("counts.parquet", schemas.COOCCURRENCE)):
        one = schemas.read_table(str(tmp_path / "one" / "cooc" / table), schema)
        many = schemas.read_table(str(tmp_path / "many" / "cooc" / table), schema)
        assert sorted(block_rows(one)) == sorted(block_rows(many))


def test_rerun_with_fewer_blocks_removes_stale_parts(tmp_path):
    source = write_playlists(tmp_path / "p.parquet", random_playlists(30, 2))
    run_job(source=source, output=str(tmp_path / "out"), blocks=4)
    run_job(source=source, output=str(tmp_path / "out"), blocks=2)
    parts = listed_names(str(tmp_path / "out" / "cooc" / "topk.parquet"))
    assert parts == ["part-00000.parquet", "part-00001.parquet"]


def test_overlong_playlists_are_skipped_and_reported(tmp_path):
    huge = [f"big-{i}" for i in range(100_000)]
    source = write_playlists(tmp_path / "p.parquet", [huge, ["a", "b"], ["a", "b", "c"]])
    body = run_job(source=source, output=str(tmp_path / "out"))
    assert body["counts"]["groups_too_long"] == 1 and body["counts"]["groups_used"] == 2
    top = schemas.read_table(str(tmp_path / "out" / "cooc" / "topk.parquet"), schemas.TOPK)
    assert set(top.column("track_id").to_pylist()) == {"a", "b", "c"}


def test_cli_group_by_artist_uses_track_meta_beside_the_playlists(tmp_path):
    meta = pa.table({"track_id": ["t1", "t2", "t3", "t4"], "artist_ids": [["A"], ["A", "B"], ["B"], ["C"]],
                     "genres": [[]] * 4}, schema=schemas.TRACK_META)  # fmt: skip
    schemas.write_table(meta, str(tmp_path / "track_meta.parquet"), schemas.TRACK_META)
    write_playlists(tmp_path / "playlists.parquet", [["t1", "t2"]])
    subprocess.run([sys.executable, "-m", "duet.cli", "cooccurrence", "--playlists",
                    str(tmp_path / "playlists.parquet"), "--output", str(tmp_path), "--group-by",
                    "artist"], check=True, capture_output=True)  # fmt: skip
    folder = tmp_path / "cooc_artist"
    top = block_rows(schemas.read_table(str(folder / "topk.parquet"), schemas.TOPK))
    assert sorted((a, n, c) for a, _, n, c in top) == [
        ("t1", "t2", 1),
        ("t2", "t1", 1),
        ("t2", "t3", 1),
        ("t3", "t2", 1),
    ]
    groups = schemas.read_table(str(folder / "groups.parquet"), schemas.PLAYLISTS).to_pylist()
    assert [g["playlist_id"] for g in groups] == ["A", "B", "C"]
