"""Pair manifests: each strategy against a straightforward reference of the paper's algorithm,
the invariants ``--verify`` checks, determinism, atomic publish and resume."""

import os

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duet import publish, schemas
from duet.cli import main
from duet.pipelines.beam_io import make_pipeline
from duet.pipelines.pairs import common, runs, strategies, verify
from duet.pipelines.pairs import job as pairs_job
from duet.pipelines.pairs.sources import Inputs, Sources
from tests.support import pairs_reference as ref
from tests.support.helpers import cli_error, crash_on_call, tree
from tests.support.tables import (
    publish_table,
    write_index,
    write_playlists,
    write_splits,
    write_topk,
)


def rng_for(seed: int, epoch: int, strategy: str) -> tuple[np.random.Generator, int]:
    s = strategies.epoch_seed(seed, epoch, strategy)
    return np.random.Generator(np.random.PCG64(s)), s


def rows(table: pa.Table) -> list[tuple]:
    return list(zip(table.column("anchor_id").to_pylist(), table.column("positive_id").to_pylist(),
                    strict=True))  # fmt: skip


def with_audio(root, tracks) -> None:
    write_index(str(root), {t: {"wav-22050": 100_000} for t in tracks})


track_names = st.sampled_from([f"t{i:02d}" for i in range(25)] + ["ü-ñ", "../x"])
playlist_sets = st.lists(st.lists(track_names, min_size=0, max_size=12), min_size=1, max_size=15)
EXAMPLES = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


# ---------------------------------------------------------------- against the references


@EXAMPLES
@given(lists=playlist_sets, drop=st.sets(track_names, max_size=5), seed=st.integers(0, 3),
       epoch=st.integers(0, 3))  # fmt: skip
def test_playlist_co_equals_the_reference(tmp_path_factory, lists, drop, seed, epoch):
    root = str(tmp_path_factory.mktemp("co"))
    tracks = sorted({t for p in lists for t in p})
    with_audio(root, [t for t in tracks if t not in drop])
    write_playlists(root, lists)
    table, stats = strategies.make_epoch(Sources(Inputs(root), ()), "playlist_co", seed, epoch)
    rng, s = rng_for(seed, epoch, "playlist_co")
    order = rng.permutation(len(lists)).tolist()
    expected = ref.playlist_co(lists, order, set(tracks) - drop, s)
    assert rows(table) == expected
    used = [t for pair in expected for t in pair]
    assert len(used) == len(set(used)) and all(a != b for a, b in expected)
    assert stats["pairs"] == len(expected) and stats["tracks_covered"] == len(used)


@EXAMPLES
@given(data=st.data(), seed=st.integers(0, 3), epoch=st.integers(0, 3))
def test_playlist_tco_equals_the_reference(tmp_path_factory, data, seed, epoch):
    names = [f"t{i:02d}" for i in range(20)]
    topk = data.draw(st.dictionaries(st.sampled_from(names), st.lists(st.sampled_from(names),
                     max_size=12, unique=True), min_size=1))  # fmt: skip
    topk = {t: [n for n in ns if n != t][:10] for t, ns in topk.items()}
    topk = {t: ns for t, ns in topk.items() if ns} or {"t00": ["t01"]}
    drop = data.draw(st.sets(st.sampled_from(names), max_size=4))
    root = str(tmp_path_factory.mktemp("tco"))
    write_topk(root, topk)
    ids = sorted({t for t in topk} | {n for ns in topk.values() for n in ns})
    with_audio(root, [t for t in ids if t not in drop])
    table, _ = strategies.make_epoch(Sources(Inputs(root), ()), "playlist_tco", seed, epoch)
    rng, s = rng_for(seed, epoch, "playlist_tco")
    order = [ids[i] for i in rng.permutation(len(ids))]
    index_of = {t: i for i, t in enumerate(ids)}
    expected = ref.playlist_tco(topk, order, set(ids) - drop, s, index_of)
    assert rows(table) == expected
    assert all(b in topk[a] for a, b in expected)


@EXAMPLES
@given(artists=st.dictionaries(track_names, st.lists(st.sampled_from(["a", "b", "c", "d"]),
                                                      max_size=3)),
       seed=st.integers(0, 3))  # fmt: skip
def test_artist_co_equals_the_reference_without_the_one_pair_limit(tmp_path_factory, artists, seed):
    root = str(tmp_path_factory.mktemp("artist"))
    rows_ = [{"track_id": t, "artist_ids": a, "genres": []} for t, a in artists.items()]
    publish_table(os.path.join(root, "track_meta.parquet"), "part-00000.parquet",
                  schemas.from_rows(rows_, schemas.TRACK_META), schemas.TRACK_META)  # fmt: skip
    table, _ = strategies.make_epoch(Sources(Inputs(root), ()), "artist_co", seed, 0)
    names = sorted({a for a_s in artists.values() for a in a_s})
    groups = [sorted({t for t, a_s in artists.items() if name in a_s}) for name in names]
    rng, s = rng_for(seed, 0, "artist_co")
    expected = ref.group_co(groups, rng.permutation(len(groups)).tolist(), set(artists), s)
    assert rows(table) == expected


def test_artist_co_pairs_a_track_once_per_artist_it_has(tmp_path):
    meta = {"x": ["a", "b"], "y": ["a"], "z": ["b"]}
    rows_ = [{"track_id": t, "artist_ids": a, "genres": []} for t, a in meta.items()]
    publish_table(str(tmp_path / "track_meta.parquet"), "part-00000.parquet",
                  schemas.from_rows(rows_, schemas.TRACK_META), schemas.TRACK_META)  # fmt: skip
    table, stats = strategies.make_epoch(Sources(Inputs(str(tmp_path)), ()), "artist_co", 0, 0)
    assert sorted(tuple(sorted(p)) for p in rows(table)) == [("x", "y"), ("x", "z")]
    assert stats["tracks_covered"] == 3


# ---------------------------------------------------------------- crops


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(0, 3000), min_size=1, max_size=40), seed=st.integers(0, 9))
def test_crops_lie_inside_the_track_and_keep_their_geometry(lengths, seed):
    for strategy in ("self", "self_mel", "adjacent", "random_segment", "cpc"):
        crop = common.Crop(
            common.CROPS[strategy].stream, 188, gap=31 if strategy == "adjacent" else 0
        )
        total = np.array(lengths)
        usable, a, b = strategies.crop_offsets(total, crop, strategy, np.random.default_rng(seed))
        n = total[usable]
        assert (a >= 0).all() and (a + crop.length <= n).all()
        if b is not None:
            assert (b >= 0).all() and (b + crop.length <= n).all()
        if strategy == "adjacent":
            assert (np.abs(a - b) == crop.length + crop.gap).all()
        if strategy == "random_segment":
            assert (np.abs(a - b) >= crop.length).all()


def test_random_segment_draws_every_non_overlapping_start_uniformly():
    crop = common.Crop("mel-choi", 3)
    total = np.full(60_000, 10)  # starts 0..7; anchor at 0 leaves 3..7 for the positive
    _, a, b = strategies.crop_offsets(total, crop, "random_segment", np.random.default_rng(0))
    for start in range(8):
        allowed = [s for s in range(8) if abs(s - start) >= 3]
        seen = np.bincount(b[a == start], minlength=8)
        assert set(np.flatnonzero(seen)) == set(allowed)
        share = seen[allowed] / seen.sum()
        assert np.abs(share - 1 / len(allowed)).max() < 0.03


def test_adjacent_swaps_order_about_half_the_time():
    crop = common.CROPS["adjacent"]
    _, a, b = strategies.crop_offsets(
        np.full(10_000, 2000), crop, "adjacent", np.random.default_rng(1)
    )
    assert 0.47 < (a > b).mean() < 0.53


def test_too_short_tracks_are_counted_not_dropped_silently(tmp_path):
    write_index(str(tmp_path), {
        "long": {"wav-22050": 100_000, "mel-choi": 2_000}, "short": {"wav-22050": 50_000, "mel-choi": 300},
    })  # fmt: skip
    sources = Sources(Inputs(str(tmp_path)), ())
    expectations = {"self": 1, "adjacent": 1, "random_segment": 1, "cpc": 1}
    for strategy, too_short in expectations.items():
        table, stats = strategies.make_epoch(sources, strategy, 0, 0)
        assert stats["too_short"] == too_short and table.column("anchor_id").to_pylist() == ["long"]
        assert stats["eligible"] == 2 and stats["unpaired"] == 1
    with pytest.raises(common.PairsInputError, match="no stream 'mel-alonso'"):
        strategies.make_epoch(sources, "self_mel", 0, 0)


# ---------------------------------------------------------------- lookups and splits


def test_lookup_strategies_list_each_track_with_its_tables_once(tmp_path):
    root = str(tmp_path)
    with_audio(root, ["a", "b", "c", "d"])
    for name, ids in (("w2v", ["a", "b", "c", "zz"]), ("cf-warp", ["a", "b", "c"])):
        table = pa.table({"track_id": ids, "vector": pa.FixedSizeListArray.from_arrays(
            pa.array(np.zeros(2 * len(ids), np.float32)), 2)})  # fmt: skip
        publish_table(os.path.join(root, "emb", name), "vectors.parquet", table,
                      schemas.embeddings_schema(2))  # fmt: skip
    genres = pa.table({"track_id": ["a", "b"], "genre_ids": pa.FixedSizeListArray.from_arrays(
        pa.array(np.full(20, -1, np.int32)), 10), "n_genres": pa.array([1, 0], pa.int8())})  # fmt: skip
    publish_table(os.path.join(root, "emb", "genre_w2v"), "track_genres.parquet", genres,
                  schemas.TRACK_GENRES)  # fmt: skip
    sources = Sources(Inputs(root), ())
    w2v, stats = strategies.make_epoch(sources, "w2v", 0, 0)
    assert sorted(w2v.column("anchor_id").to_pylist()) == ["a", "b", "c"]  # zz has no audio
    assert w2v.column("positive_id").null_count == 3 and stats["unpaired"] == 1
    multimodal, _ = strategies.make_epoch(sources, "multimodal", 0, 0)
    assert multimodal.column("anchor_id").to_pylist() == ["a"]
    orders = {tuple(strategies.make_epoch(sources, "cf", 0, e)[0].column("anchor_id").to_pylist())
              for e in range(6)}  # fmt: skip
    assert len(orders) > 1


def test_lookup_coverage_counts_every_track_of_the_playlists_without_audio_index(tmp_path):
    root = str(tmp_path / "root")
    (tmp_path / "rows.csv").write_text("playlist_id,track_id\n" + "".join(
        f"p{i},{t}\n" for i, tracks in enumerate([list("abcdefgh"), list("abcij"), list("defkl"), list("mn")])
        for t in tracks))  # fmt: skip
    assert main(["playlists", "--input", str(tmp_path / "rows.csv"), "--format", "table",
                 "--output", root]) == 0  # fmt: skip
    assert main(["embeddings", "w2v", "--playlists", os.path.join(root, "playlists.parquet"),
                 "--output", root, "--min-count", "2", "--epochs", "1", "--deterministic"]) == 0  # fmt: skip
    assert main(["pairs", "--data", root, "--strategies", "w2v", "--epochs", "1"]) == 0
    with open(os.path.join(root, "pairs", "LATEST")) as f:
        run = f.read().strip()
    stats = publish.require_success(os.path.join(root, "pairs", run))["stats"]["w2v"]["0000"]
    assert (stats["eligible"], stats["rows"], stats["unpaired"]) == (14, 6, 8)
    assert stats["coverage"] == round(6 / 14, 6)


def test_split_keeps_only_its_tracks(tmp_path):
    root = str(tmp_path)
    lists = [[f"t{i}", f"t{i + 1}", f"t{i + 2}"] for i in range(0, 30, 3)]
    write_playlists(root, lists)
    write_splits(root, {f"t{i}": "train" if i % 4 else "test" for i in range(30)})
    table, stats = strategies.make_epoch(Sources(Inputs(root), ("train",)), "playlist_co", 0, 0)
    used = {t for pair in rows(table) for t in pair}
    assert used and all(int(t[1:]) % 4 for t in used)
    assert stats["eligible"] == sum(1 for i in range(30) if i % 4)


# ---------------------------------------------------------------- the job


@pytest.fixture()
def dataset(tmp_path):
    root = str(tmp_path / "data")
    lists = [[f"t{(7 * p + j * j) % 40:02d}" for j in range(2 + p % 6)] for p in range(60)]
    write_playlists(root, lists)
    tracks = sorted({t for p in lists for t in p})
    topk = {t: [u for u in tracks if u != t][(i % 5) : (i % 5) + 10] for i, t in enumerate(tracks)}
    write_topk(root, topk)
    write_index(root, {t: {"wav-22050": 80_000 + 1000 * i, "mel-choi": 190 + 40 * i}
                       for i, t in enumerate(tracks)})  # fmt: skip
    return root


def run_job(root: str, beam_args=(), **kw) -> dict:
    job = pairs_job.PairsJob(Inputs(root), kw.pop("strategies", ("playlist_co", "playlist_tco",
                         "self", "adjacent")), kw.pop("epochs", (0, 4)), **kw)  # fmt: skip
    pipeline = make_pipeline(list(beam_args))
    pairs_job.build(pipeline, job, published=kw.get("seed", 0))
    pipeline.run().wait_until_finish()
    return publish.require_success(job.run_dir)


def test_every_epoch_is_a_pure_function_of_tables_seed_and_epoch(dataset, tmp_path):
    body = run_job(dataset, seed=5)
    run = os.path.join(dataset, "pairs", body["run"])
    first = tree(run)
    other = str(tmp_path / "copy")
    os.makedirs(other)
    for name in ("playlists.parquet", "cooc", "index", "_SUCCESS"):
        os.system(f"cp -r {os.path.join(dataset, name)} {other}/")
    body2 = run_job(other, beam_args=["--direct_num_workers", "2", "--direct_running_mode",
                                      "multi_threading"], seed=5)  # fmt: skip
    second = tree(os.path.join(other, "pairs", body2["run"]))
    parts = [k for k in first if k.endswith(".parquet")]
    assert parts and all(first[k] == second[k] for k in parts)
    co = [first[body["files"][f"playlist_co/epoch-{e:04d}/part-00000.parquet"]["name"]]
          for e in range(4)]  # fmt: skip
    assert len(set(co)) == 4  # different epochs differ


def test_a_published_run_passes_verify_and_a_tampered_one_fails(dataset, capsys):
    body = run_job(dataset)
    assert main(["pairs", "--data", dataset, "--verify", "LATEST"]) == 0
    assert "all invariants hold" in capsys.readouterr().out
    part = os.path.join(dataset, "pairs", body["run"],
                        body["files"]["playlist_tco/epoch-0001/part-00000.parquet"]["name"])  # fmt: skip
    table = schemas.read_table(part, schemas.PAIRS)
    anchors = table.column("anchor_id").to_pylist()
    swapped = table.set_column(3, "positive_id", pa.array(anchors[1:] + anchors[:1]))
    schemas.write_table(swapped, part, schemas.PAIRS)
    report = verify.verify(dataset, body["run"])
    assert any("top 10" in p or "more than one pair" in p for p in report["playlist_tco"]["0001"])
    assert main(["pairs", "--data", dataset, "--verify", body["run"]]) == 1


def test_a_crashed_run_is_invisible_and_its_rerun_resumes(dataset, tmp_path, monkeypatch):
    clean = run_job(dataset, run_id="clean")
    real = strategies.make_epoch
    monkeypatch.setattr(pairs_job, "make_epoch", crash_on_call(real, 5))
    with pytest.raises(RuntimeError, match="worker killed"):
        run_job(dataset, run_id="crashy")
    assert publish.read_success(os.path.join(dataset, "pairs", "crashy")) is None
    assert runs.latest_run(dataset) == "clean"
    monkeypatch.setattr(pairs_job, "make_epoch", real)
    resumed = run_job(dataset, run_id="crashy")
    assert resumed["skipped_epochs"] == 4 and runs.latest_run(dataset) == "crashy"
    a, b = (
        tree(os.path.join(dataset, "pairs", "clean")),
        tree(os.path.join(dataset, "pairs", "crashy")),
    )
    assert {k: v for k, v in a.items() if k.endswith(".parquet")} == {
        k: v for k, v in b.items() if k.endswith(".parquet")}  # fmt: skip
    assert resumed["stats"] == clean["stats"]


def test_keep_prunes_old_runs_but_never_the_latest(dataset):
    for run in ("r1", "r2", "r3"):
        run_job(dataset, run_id=run, epochs=(0, 1), keep=2)
    left = sorted(r for r, _ in runs.runs(dataset))
    assert left == ["r2", "r3"] and runs.latest_run(dataset) == "r3"
    assert not os.path.exists(os.path.join(dataset, "pairs", "r1", "playlist_co"))


def test_cli_prints_statistics_per_strategy(dataset, capsys):
    code = main(["pairs", "--data", dataset, "--strategies", "playlist_co,cpc", "--epochs", "2",
                 "--seed", "3"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "playlist_co" in out and "coverage" in out and "LATEST ->" in out
    body = publish.require_success(os.path.join(dataset, "pairs", runs.latest_run(dataset)))
    assert set(body["stats"]["cpc"]) == {"0000", "0001"}
    assert body["stats"]["cpc"]["0000"]["too_short"] > 0


def test_bad_requests_are_clear_errors(dataset, tmp_path, capsys):
    assert "unknown strategies" in cli_error(
        capsys, ["pairs", "--data", dataset, "--strategies", "playlist_coo"]
    )
    assert "is not published" in cli_error(
        capsys, ["pairs", "--data", str(tmp_path / "empty"), "--strategies", "playlist_co"]
    )
    assert "not A:B" in cli_error(
        capsys, ["pairs", "--data", dataset, "--strategies", "self", "--epochs", "x:y"]
    )
    assert "splits table" in cli_error(
        capsys, ["pairs", "--data", dataset, "--strategies", "self", "--split", "train"]
    )
