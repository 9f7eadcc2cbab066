"""Fault injection: jobs killed at random points, a disk that fills, two writers at once, bit
flips in shard members and in a checkpoint, an S3 endpoint that throttles and drops
connections. Each fault either ends in a clean refusal or in a
re-run identical to an uninterrupted run; the published generation is never lost and no
injected byte runs code. Every injection is recorded (``tests/support/faults.py``) and the
session prints the table the docs show."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from duet import layout, publish, readers, schemas, storage
from duet.cli import main
from duet.hashing import derive_seed
from duet.index import AudioIndex, IntegrityError
from duet.training import checkpoint
from tests.support import faults
from tests.support.flaky import flaky_proxy
from tests.support.helpers import by_logical, tree
from tests.support.planted import planted_playlists
from tests.support.s3 import BUCKET, VOLATILE
from tests.support.tables import write_index, write_playlists

pytestmark = pytest.mark.slow  # still part of make test / CI
KILLS = 3
"""Random kill points per job (seeded by the test's name: reproducible)."""


def cli(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "duet.cli", *argv],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip


def finished(*argv: str) -> None:
    proc = cli(*argv)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]


def timed(*argv: str) -> float:
    start = time.monotonic()
    finished(*argv)
    return time.monotonic() - start


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> str:
    """A dataset root with published playlists and an audio index of their tracks."""
    root = str(tmp_path_factory.mktemp("faults") / "root")
    lists = planted_playlists(clusters=8, per_cluster=12, playlists=300, length=6)
    write_playlists(root, lists)
    tracks = sorted({t for p in lists for t in p})
    write_index(root, {t: {"wav-22050": 80_000, "mel-choi": 200} for t in tracks})
    return root


def cooc_args(root: str, top_k: int = 5) -> list[str]:
    return ["cooccurrence", "--playlists", layout.at(root, layout.PLAYLISTS), "--output", root,
            "--top-k", str(top_k), "--counts"]  # fmt: skip


def pairs_args(root: str) -> list[str]:
    return ["pairs", "--data", root, "--strategies", "playlist_co,self", "--epochs", "0:3",
            "--run-id", "faults"]  # fmt: skip


def copy(root: str, to: str) -> str:
    shutil.copytree(root, to)
    return to


def _marker(data: bytes) -> dict:
    """A marker without what names the run's place, time and resumption (input URIs, wall
    time, epochs reused from the killed run)."""
    body = publish.parse(data) or {}
    for key in ("wall_time_s", "published", "skipped_epochs"):
        body.pop(key, None)
    counts = body.get("counts") or {}
    for key in ("skipped", "written"):
        counts.pop(key, None)
    inputs = body.get("inputs") or {}
    body["inputs"] = {k: (v.get("fingerprint") if isinstance(v, dict) else v)
                      for k, v in inputs.items() if k != "uri"}  # fmt: skip
    return body


def generation(folder: str) -> dict:
    """What readers of a published folder see: the files its marker lists, by logical name, and
    the marker but for where and when."""
    files = by_logical(tree(folder))
    return {**files, publish.SUCCESS: _marker(files[publish.SUCCESS])}


def same(a: str, b: str) -> bool:
    """Two folders hold the same bytes (lock files aside; markers but for where and when)."""
    mine, theirs = tree(a), tree(b)
    markers = [k for k in mine if k.endswith(publish.SUCCESS)]
    return (sorted(mine) == sorted(theirs)
            and all(mine[k] == theirs[k] for k in mine if k not in markers)
            and all(_marker(mine[k]) == _marker(theirs[k]) for k in markers))  # fmt: skip


@pytest.mark.parametrize("job", ["cooccurrence", "pairs"])
def test_a_job_killed_at_random_points_reruns_to_what_an_uninterrupted_run_writes(
    base, tmp_path, job
):
    reference = copy(base, str(tmp_path / "reference"))
    finished(*cooc_args(reference, top_k=3))  # a published generation to keep readable
    prepared = copy(reference, str(tmp_path / "prepared"))
    args = cooc_args if job == "cooccurrence" else pairs_args
    folder = layout.COOC["playlist"] if job == "cooccurrence" else layout.PAIRS
    if job == "pairs":
        finished(*cooc_args(prepared))
        finished(*cooc_args(reference))
    took = timed(*args(reference))
    rng = np.random.default_rng(derive_seed(0, "faults", job))
    for kill in range(KILLS):
        root = copy(prepared, str(tmp_path / f"killed-{kill}"))
        before = generation(layout.at(root, layout.COOC["playlist"]))
        proc = cli(*args(root))
        time.sleep(float(rng.uniform(0.2, took)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = generation(layout.at(root, layout.COOC["playlist"]))  # old or new, never a mix
        kept = now in (before, generation(layout.at(reference, layout.COOC["playlist"])))
        finished(*args(root))
        rerun = same(layout.at(root, folder), layout.at(reference, folder))
        faults.record(f"SIGKILL during duet {job}, then re-run", survived=kept and rerun,
                      data_lost=not kept)  # fmt: skip
        assert kept and rerun


class FullDisk:
    """Local writes (``duet.storage``'s atomic files) raise ENOSPC once ``budget`` bytes have
    been written: a filesystem that fills mid-job."""

    def __init__(self, budget: int):
        self.budget = budget
        self.real = storage.AtomicFile.write

    def __call__(self, handle, data) -> int:
        self.budget -= len(data)
        if self.budget < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.real(handle, data)


@pytest.mark.parametrize("budget", [0, 2_000, 20_000])
def test_a_disk_that_fills_leaves_the_published_generation_and_a_rerun_completes(
    base, tmp_path, monkeypatch, capsys, budget
):
    root = copy(base, str(tmp_path / "root"))
    assert main(cooc_args(root, top_k=3)) == 0
    folder = layout.at(root, layout.COOC["playlist"])
    published = by_logical(tree(folder))
    monkeypatch.setattr(storage.AtomicFile, "write", FullDisk(budget))
    try:
        failed = main(cooc_args(root)) == 1
    except OSError as exc:  # the error a full disk raises, unmasked
        failed = exc.errno == errno.ENOSPC
    monkeypatch.undo()
    assert failed
    kept = by_logical(tree(folder)) == published
    table = readers.read_published(layout.at(folder, layout.TOPK), schemas.TOPK, "duet cooc")
    assert main(cooc_args(root)) == 0
    reference = copy(base, str(tmp_path / "reference"))
    assert main(cooc_args(reference)) == 0
    rerun = same(folder, layout.at(reference, layout.COOC["playlist"]))
    faults.record("disk full (ENOSPC) during duet cooccurrence", survived=kept and rerun,
                  data_lost=not kept or not table.num_rows)  # fmt: skip
    assert kept and rerun and table.num_rows


def test_two_writers_at_once_leave_one_whole_generation(base, tmp_path):
    reference = copy(base, str(tmp_path / "reference"))
    finished(*cooc_args(reference))
    for attempt in range(2):
        root = copy(base, str(tmp_path / f"root-{attempt}"))
        finished(*cooc_args(root, top_k=3))
        writers = [cli(*cooc_args(root)) for _ in range(2)]  # started together
        ends = [(w.wait(timeout=300), w.stderr.read().decode()) for w in writers]
        clean = all(rc == 0 or (rc == 1 and "one writer at a time" in err) for rc, err in ends)
        whole = same(layout.at(root, layout.COOC["playlist"]),
                     layout.at(reference, layout.COOC["playlist"]))  # fmt: skip
        faults.record("two writers on one folder at once", survived=clean and whole,
                      data_lost=not whole)  # fmt: skip
        assert clean and whole, ends


def test_a_bit_flip_in_a_shard_member_is_refused_by_the_index_reader(published, tmp_path):
    root = copy(published, str(tmp_path / "root"))
    index = AudioIndex.open(root)
    rng = np.random.default_rng(derive_seed(0, "faults", "member"))
    for track in index.track_ids[:3]:
        member = index.entry(track, "mel-alonso")
        shard = os.path.join(root, member.shard)
        with open(shard, "r+b") as f:
            at = member.offset + int(rng.integers(member.payload_offset, member.size))
            f.seek(at)
            byte = f.read(1)[0]
            f.seek(at)
            f.write(bytes([byte ^ (1 << int(rng.integers(0, 8)))]))
        with pytest.raises(IntegrityError, match="sha256 mismatch"):
            AudioIndex.open(root).read_member(track, "mel-alonso", verify=True)
        faults.record("bit flip in a shard member (index reader, verify)", survived=True)


def test_bit_flips_in_a_member_duet_train_reads_are_skipped_and_counted(dataset, tmp_path):
    from duet.training import data
    from duet.training.store import Store
    from tests.test_train_cli import duet, finite, first_anchor, train_argv

    root = copy(dataset, str(tmp_path / "data"))
    victim = first_anchor(root)
    m = data.Root(Store(root)).members["mel-alonso"][victim]
    rng = np.random.default_rng(derive_seed(0, "faults", "train"))
    with open(os.path.join(root, m.shard), "r+b") as f:  # one bit every 512 bytes: any crop
        for block in range(m.start, m.start + m.length * m.width * 2, 512):  # reads a flip
            at = block + int(rng.integers(0, 512))
            f.seek(at)
            byte = f.read(1)[0]
            f.seek(at)
            f.write(bytes([byte ^ (1 << int(rng.integers(0, 8)))]))
    out = str(tmp_path / "run")
    result = duet(*train_argv(root, out, "--epochs", "1"))
    survived = result.returncode == 0 and "corrupt 1" in result.stdout and finite(out)
    faults.record("bit flips in a shard member read by duet train", survived=survived,
                  data_lost=not survived)  # fmt: skip
    assert survived, result.stderr[-2000:]


def test_a_bit_flip_in_a_checkpoint_is_refused_before_use(tmp_path):
    blob = bytearray(checkpoint.dumps({"model": {"w": torch.arange(4096, dtype=torch.float32)},
                                       "step": 3}))  # fmt: skip
    rng = np.random.default_rng(derive_seed(0, "faults", "checkpoint"))
    for _ in range(5):
        flipped = bytearray(blob)
        at = int(rng.integers(0, len(flipped)))
        flipped[at] ^= 1 << int(rng.integers(0, 8))
        try:
            content = checkpoint.loads(bytes(flipped), "ckpt.pt")
        except checkpoint.CheckpointError:
            refused = True
        else:  # a flip in a byte no field reads (zip padding): the content must be intact
            refused = torch.equal(content["model"]["w"], torch.arange(4096, dtype=torch.float32))
        faults.record("bit flip in a checkpoint", survived=refused, data_lost=not refused)
        assert refused


def test_markers_a_full_disk_left_empty_or_truncated_mean_not_published(base, tmp_path):
    root = copy(base, str(tmp_path / "root"))
    assert main(cooc_args(root, top_k=3)) == 0
    folder = layout.at(root, layout.COOC["playlist"])
    marker = publish.marker_uri(folder)
    whole = storage.read_bytes(marker)
    for cut in (0, len(whole) // 2):
        with open(marker, "wb") as f:
            f.write(whole[:cut])
        refused = publish.read_success(folder) is None
        with pytest.raises(publish.NotPublished):
            readers.read_published(layout.at(folder, layout.TOPK), schemas.TOPK, "duet cooc")
        assert main(cooc_args(root, top_k=3)) == 0  # not wedged: the next run publishes
        faults.record("empty or truncated _SUCCESS", survived=refused)
        assert refused


# ------------------------------------------------- a throttling, connection-dropping S3 endpoint
FLAKY = "S3 503 SlowDown (~20 %) and dropped connections (~5 %)"


def test_a_beam_job_writing_through_a_flaky_s3_endpoint_publishes_what_moto_alone_gets(base, s3):
    remote = s3.upload(layout.at(base, layout.PLAYLISTS), f"flaky-in/{layout.PLAYLISTS}")
    direct = ["cooccurrence", "--playlists", remote, "--counts", *s3.args]
    finished(*direct, "--output", f"s3://{BUCKET}/flaky-direct")
    with flaky_proxy(s3.endpoint, seed=derive_seed(0, "faults", "flaky", "beam")) as (url, hits):
        proc = cli(*direct, "--output", f"s3://{BUCKET}/flaky-out", "--s3_endpoint_url", url)
        _, err = proc.communicate(timeout=300)
    out, expected = s3.tree("flaky-out"), s3.tree("flaky-direct")
    if proc.returncode == 0:
        whole = sorted(out) == sorted(expected) and all(
            out[k] == expected[k] for k in out if not k.endswith(VOLATILE))  # fmt: skip
    else:  # a clean refusal: one line, nothing published
        whole = (len(err.decode().strip().splitlines()) == 1
                 and publish.read_success(f"s3://{BUCKET}/flaky-out") is None)  # fmt: skip
    faults.record(f"{FLAKY}: duet cooccurrence writing to S3", survived=whole,
                  data_lost=not whole, injected=hits.injected)  # fmt: skip
    assert hits.injected and whole, (hits.counts, err.decode()[-2000:])


def test_duet_train_reading_through_a_flaky_s3_endpoint_trains_what_moto_alone_gives(
    dataset, s3, tmp_path
):
    from tests.test_train_cli import duet, finite, metrics, train_argv

    remote = s3.upload(dataset, "flaky-train")
    steps = ("--epochs", "1", "--max-steps", "4")
    direct = str(tmp_path / "direct")
    result = duet(*train_argv(remote, direct, *steps, "--s3-endpoint-url", s3.endpoint))
    assert result.returncode == 0, result.stderr[-2000:]
    out = str(tmp_path / "flaky")
    with flaky_proxy(s3.endpoint, seed=derive_seed(0, "faults", "flaky", "train")) as (url, hits):
        result = duet(*train_argv(remote, out, *steps, "--s3-endpoint-url", url))
    if result.returncode == 0:
        same_loss = [m["loss"] for m in metrics(out)] == [m["loss"] for m in metrics(direct)]
        survived = same_loss and finite(out)
    else:  # a clean refusal: one line, no checkpoint
        survived = (len(result.stderr.strip().splitlines()) == 1
                    and not os.path.exists(os.path.join(out, "checkpoint.pt")))  # fmt: skip
    faults.record(f"{FLAKY}: duet train reading S3", survived=survived, data_lost=not survived,
                  injected=hits.injected)  # fmt: skip
    assert hits.injected and survived, (hits.counts, result.stderr[-2000:])
