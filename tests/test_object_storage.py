"""Every job against a real S3-compatible HTTP endpoint on 127.0.0.1 (moto's server mode,
started and stopped here): outputs equal a local run byte for byte, and a run killed mid-way
leaves nothing half-written visible to readers."""

import io
import json
import logging
import os
import shutil
import subprocess
import sys
import time

import boto3
import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from duet import layout, publish
from duet.cli import main
from duet.pipelines.pairs import job as pairs_job
from duet.pipelines.pairs import runs, strategies
from duet.report import make_report
from tests.helpers import crash_on_call, run_shards, tree
from tests.planted import planted_playlists, write_playlists
from tests.test_pairs import write_index, write_topk

pytestmark = pytest.mark.slow  # still part of make test / CI

BUCKET = "duet"
VOLATILE = ("_SUCCESS", ".json")  # markers and reports record input URIs and mtimes


class S3:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.args = ["--s3_endpoint_url", endpoint, "--s3_access_key_id", "duet",
                     "--s3_secret_access_key", "duet", "--s3_region_name", "us-east-1"]  # fmt: skip
        self.client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="duet",
                                   aws_secret_access_key="duet", region_name="us-east-1")  # fmt: skip

    def upload(self, local: str, prefix: str) -> str:
        for dirpath, _, names in os.walk(local):
            for name in names:
                path = os.path.join(dirpath, name)
                key = f"{prefix}/{os.path.relpath(path, local)}"
                self.client.upload_file(path, BUCKET, key)
        return f"s3://{BUCKET}/{prefix}"

    def keys(self, prefix: str) -> list[str]:
        out, token = [], None
        while True:
            kw = {"ContinuationToken": token} if token else {}
            page = self.client.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/", **kw)
            out += [o["Key"][len(prefix) + 1 :] for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return sorted(out)
            token = page["NextContinuationToken"]

    def tree(self, prefix: str) -> dict[str, bytes]:
        return {k: self.client.get_object(Bucket=BUCKET, Key=f"{prefix}/{k}")["Body"].read()
                for k in self.keys(prefix)}  # fmt: skip


@pytest.fixture(scope="module")
def s3():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    store = S3(f"http://{host}:{port}")
    store.client.create_bucket(Bucket=BUCKET)
    FileSystems.set_options(PipelineOptions(store.args))
    credentials = {
        "AWS_ACCESS_KEY_ID": "duet",
        "AWS_SECRET_ACCESS_KEY": "duet",
        "AWS_DEFAULT_REGION": "us-east-1",
    }  # for fsspec/s3fs (the trainer)
    saved = {k: os.environ.get(k) for k in credentials}
    os.environ.update(credentials)
    yield store
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    FileSystems.set_options(PipelineOptions([]))
    server.stop()


def assert_same_outputs(local: dict[str, bytes], remote: dict[str, bytes], skip=()) -> None:
    """Same file names; same bytes except markers/reports and tables that hold input URIs."""
    assert sorted(local) == sorted(remote)
    compared = [k for k in local if not k.endswith(VOLATILE) and not k.startswith(tuple(skip))]
    assert compared
    different = [k for k in compared if local[k] != remote[k]]
    assert not different, different


def test_shards_job_on_s3_writes_what_a_local_run_writes(s3, catalog, published):
    manifest = s3.upload(catalog, "catalog") + "/tracks.parquet"
    run_shards(manifest, f"s3://{BUCKET}/shards", beam_args=s3.args)
    remote = s3.tree("shards")
    assert_same_outputs(tree(published), remote, skip=("failures/",))
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
    assert_same_outputs(tree(published), s3.tree("killed"), skip=("failures/",))


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


def test_pairs_on_s3_match_a_local_run_and_survive_a_crash(s3, tables, tmp_path, monkeypatch):
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
    with pytest.raises(RuntimeError, match="worker killed"):
        main(["pairs", "--data", remote, *argv, "--direct_num_workers", "1", *s3.args])
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
    publish.write_success(write_playlists(local, lists), layout.summary(
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
