"""Every job against a real S3-compatible HTTP endpoint on 127.0.0.1 (moto's server mode,
started and stopped here): outputs equal a local run byte for byte, and a run killed mid-way
leaves nothing half-written visible to readers."""

import io
import json
import os
import shutil
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from duet import layout, publish
from duet.cli import main
from duet.pipelines.pairs import job as pairs_job
from duet.pipelines.pairs import runs, strategies
from duet.pipelines.playlists import table as plain
from duet.pipelines.playlists.steps import PlaylistsJob, plan
from duet.report import make_report
from tests.support.helpers import crash_on_call, run_shards, tree
from tests.support.planted import planted_playlists
from tests.support.s3 import BUCKET, assert_same_generation, assert_same_outputs
from tests.support.tables import republish, write_index, write_playlists, write_topk

pytestmark = pytest.mark.slow  # still part of make test / CI


def test_shards_job_on_s3_writes_what_a_local_run_writes(s3, catalog, published):
    manifest = s3.upload(catalog, "catalog") + "/tracks.parquet"
    run_shards(manifest, f"s3://{BUCKET}/shards", beam_args=s3.args)
    remote = s3.tree("shards")
    assert_same_generation(tree(published), remote, skip=("failures/",))
    failures = [
        pq.read_table(io.BytesIO(remote[k])) for k in remote if k.startswith("failures/part")
    ]
    assert sum(t.num_rows for t in failures) == sum(
        pq.read_table(os.path.join(published, "failures", n)).num_rows
        for n in os.listdir(os.path.join(published, "failures")) if n.startswith("part"))  # fmt: skip
    assert (
        publish.read_success(f"s3://{BUCKET}/shards")["counts"]
        == publish.read_success(published)["counts"]
    )


def test_a_shards_run_killed_mid_way_on_s3_is_invisible_and_its_rerun_completes(
    s3, catalog, published, tmp_path
):
    manifest = s3.upload(catalog, "catalog-kill") + "/tracks.parquet"
    out = f"s3://{BUCKET}/killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "duet.cli", "shards", "--tracks", manifest, "--output", out,
         "--streams", "wav-16000,wav-22050,mel-alonso,mel-ferraro", "--num-shards", "3",
         "--max-duration", "60", *s3.args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(k.endswith(".tar") for k in s3.keys("killed")):
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert publish.read_success(out) is None  # readers refuse the folder
    run_shards(manifest, out, beam_args=s3.args)
    assert_same_generation(tree(published), s3.tree("killed"), skip=("failures/",))


def test_playlists_from_and_to_s3_in_worker_processes_match_a_local_run(s3, catalog, tmp_path):
    raw = tmp_path / "mpd"
    raw.mkdir()
    (name,) = os.listdir(os.path.join(catalog, "mpd"))
    with open(os.path.join(catalog, "mpd", name)) as f:
        playlists = json.load(f)["playlists"]
    for i in range(3):  # three slices: one unit of work each, for two worker processes
        (raw / f"mpd.slice.{i}.json").write_text(json.dumps({"playlists": playlists[i::3]}))
    remote = s3.upload(str(raw), "raw-mpd")
    local_out = str(tmp_path / "playlists")
    assert main(["playlists", "--input", str(raw), "--format", "mpd",
                 "--output", local_out, "--parts", "2"]) == 0  # fmt: skip
    assert main(["playlists", "--input", remote, "--format", "mpd", "--parts", "2",
                 "--output", f"s3://{BUCKET}/playlists", "--workers", "2", *s3.args]) == 0  # fmt: skip
    assert_same_outputs(tree(local_out), s3.tree("playlists"), skip=("playlists_failures",))


def test_a_parquet_table_on_s3_is_read_in_row_group_units_like_a_local_one(
    s3, tmp_path, monkeypatch
):
    rows = [
        {"playlist_id": f"p{i % 37}", "track_id": f"t{(i * 7) % 90}", "pos": i} for i in range(1000)
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "entries.parquet", row_group_size=100)
    remote = s3.upload(str(tmp_path), "raw-table") + "/entries.parquet"
    monkeypatch.setattr(plain, "ROWS_PER_UNIT", 250)
    assert len(plan(PlaylistsJob((remote,), "table", "unused")).units) == 4
    local_out = str(tmp_path / "out")
    assert main(["playlists", "--input", str(tmp_path / "entries.parquet"), "--format", "table",
                 "--output", local_out]) == 0  # fmt: skip
    assert main(["playlists", "--input", remote, "--format", "table", "--workers", "2",
                 "--output", f"s3://{BUCKET}/table-out", *s3.args]) == 0  # fmt: skip
    assert_same_outputs(tree(local_out), s3.tree("table-out"))


@pytest.fixture()
def tables(tmp_path):
    root = str(tmp_path / "tables")
    lists = planted_playlists(clusters=6, per_cluster=12, playlists=120, length=6)
    write_playlists(root, lists)
    tracks = sorted({t for p in lists for t in p})
    write_index(root, {t: {"wav-22050": 70_000 + 997 * i} for i, t in enumerate(tracks)})
    return root


def test_cooccurrence_on_s3_matches_a_local_run(s3, tables, tmp_path):
    remote = s3.upload(tables, "cooc-in")
    local_out = str(tmp_path / "cooc-out")
    assert main(["cooccurrence", "--playlists", os.path.join(tables, "playlists.parquet"),
                 "--output", local_out, "--counts"]) == 0  # fmt: skip
    assert main(["cooccurrence", "--playlists", remote + "/playlists.parquet",
                 "--output", f"s3://{BUCKET}/cooc-out", "--counts", *s3.args]) == 0  # fmt: skip
    assert_same_outputs(tree(local_out), s3.tree("cooc-out"))


def test_pairs_on_s3_match_a_local_run_and_survive_a_crash(
    s3, tables, tmp_path, monkeypatch, capsys
):
    write_topk(tables, {f"c00-t{i:02d}": [f"c00-t{j:02d}" for j in range(12) if j != i][:10]
                        for i in range(12)})  # fmt: skip
    local = str(tmp_path / "local")
    shutil.copytree(tables, local)
    remote = s3.upload(tables, "pairs-data")
    argv = [
        "--strategies",
        "playlist_co,playlist_tco,self",
        "--epochs",
        "0:3",
        "--run-id",
        "nightly-1",
    ]
    assert main(["pairs", "--data", local, *argv]) == 0

    real = strategies.make_epoch
    monkeypatch.setattr(pairs_job, "make_epoch", crash_on_call(real, 4))
    assert main(["pairs", "--data", remote, *argv, "--direct_num_workers", "1", *s3.args]) == 1
    assert "worker killed" in capsys.readouterr().err
    visible = s3.keys("pairs-data/pairs")
    assert "LATEST" not in visible and "nightly-1/_SUCCESS" not in visible
    monkeypatch.setattr(pairs_job, "make_epoch", real)
    assert main(["pairs", "--data", remote, *argv, *s3.args]) == 0
    assert runs.latest_run(remote) == "nightly-1"
    local_pairs, remote_pairs = (
        tree(os.path.join(local, "pairs")),
        s3.tree("pairs-data/pairs"),
    )
    assert_same_outputs(local_pairs, remote_pairs)
    assert sum(k.endswith(".parquet") for k in remote_pairs) == 9  # no duplicates


def test_the_report_of_a_bucket_shows_what_the_local_report_shows(s3, published, tmp_path):
    local = str(tmp_path / "root")
    shutil.copytree(published, local)
    lists = planted_playlists(clusters=4, per_cluster=10, playlists=60, length=5)
    republish(write_playlists(local, lists), layout.summary(
        "playlists", format_version=1, config={"format": "table"},
        inputs={"files": {"uri": "planted", "fingerprint": "0"}},
        counts={"playlists": len(lists), "entries": 300, "entries_read": 300,
                "tracks_with_meta": 0, "failures": 0}, dropped={},
    ))  # fmt: skip
    remote = s3.upload(local, "report-root")
    mine = make_report(local, str(tmp_path / "card"), log=lambda line: None)
    theirs = make_report(remote, f"s3://{BUCKET}/report-card", log=lambda line: None)
    assert theirs["index.html"] == f"s3://{BUCKET}/report-card/index.html"
    with open(mine["report.json"]) as f:
        expected = json.load(f)["sections"]
    got = json.loads(s3.client.get_object(Bucket=BUCKET, Key="report-card/report.json")["Body"]
                     .read())["sections"]  # fmt: skip
    for key in ("audio", "features", "playlists"):
        assert got[key]["status"] == expected[key]["status"] == "ok"
        assert got[key]["facts"] == expected[key]["facts"]
        assert {k: f["data"] for k, f in got[key]["figures"].items()} == {
            k: f["data"] for k, f in expected[key]["figures"].items()
        }
