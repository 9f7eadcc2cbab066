"""One writer at a time (duet.lease): a local lock file held by a live process, a lease object
on S3 (moto on loopback) created and taken over only by conditional writes; a second writer is
refused with a message naming the holder, and a job whose lock was taken publishes nothing."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from duet import layout, lease, publish
from duet.cli import main
from tests.support.helpers import tree
from tests.support.planted import planted_playlists
from tests.support.tables import write_playlists

HOLD = """
import sys, time
from duet import lease
with lease.hold([sys.argv[1]], "owner-of-the-other", "duet shards"):
    print("held", flush=True)
    time.sleep(600)
"""


def holding_process(folder: str) -> subprocess.Popen:
    """Another process that holds ``folder``'s lock until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, folder], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"held"
    return proc


def test_a_second_writer_is_refused_with_the_holders_name_and_changes_nothing(tmp_path, capsys):
    root = str(tmp_path)
    write_playlists(root, planted_playlists(playlists=40))
    folder = layout.at(root, layout.embedding_folder("w2v"))
    other = holding_process(folder)
    try:
        before = tree(root)
        assert main(["embeddings", "w2v", "--playlists", layout.at(root, layout.PLAYLISTS),
                     "--output", root, "--epochs", "1"]) == 1  # fmt: skip
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert line.startswith("duet embeddings: ") and "`duet shards`" in line
        assert f"pid {other.pid}" in line and tree(root) == before
    finally:
        other.kill()
        other.wait()


def test_a_lock_is_free_again_once_its_holder_is_killed(tmp_path):
    folder = str(tmp_path / "t")
    other = holding_process(folder)
    with pytest.raises(lease.Busy), lease.hold([folder], "me", "duet pairs"):
        pass
    other.send_signal(signal.SIGKILL)
    other.wait()
    with lease.hold([folder], "me", "duet pairs"):
        assert lease.holder(folder).owner == "me"


def test_a_job_whose_lock_names_another_writer_publishes_nothing(tmp_path):
    folder = str(tmp_path / "t")
    files = publish.write(folder, "part-00000.parquet", b"data")
    lost = pytest.raises(lease.Lost, match="duet splits")
    with lease.hold([folder], "someone-else", "duet splits"), lost:
        publish.commit(folder, {"job": "x"}, files, how=publish.Commit(owner="me"))
    assert publish.read_success(folder) is None and os.listdir(folder) == [lease.LOCK]


# ---------------------------------------------------------------- leases on S3


@pytest.fixture()
def bucket(s3, request):
    return f"s3://duet/lease/{request.node.name}"


def lease_body(s3, folder: str) -> dict:
    key = folder[len("s3://duet/") :] + "/" + lease.LOCK
    return json.loads(s3.client.get_object(Bucket="duet", Key=key)["Body"].read())


def test_a_lease_is_created_refreshed_and_released(s3, bucket):
    held = lease.Lease(bucket, "me", "duet shards", ttl=1.5)
    held.acquire()
    assert held.conditional
    first = lease_body(s3, bucket)["expires"]
    time.sleep(1.2)
    assert lease_body(s3, bucket)["expires"] > first  # refreshed by its thread
    lease.check(bucket, "me")
    held.release()
    assert lease.holder(bucket) is None


def test_an_interrupted_command_releases_its_lease_for_the_rerun(s3, bucket):
    """What Ctrl-C does before the process ends (duet.cli.interrupt): no lease is left to
    refuse the same command run again."""
    with lease.hold([bucket], "interrupted", "duet pairs"):
        assert lease_body(s3, bucket)["owner"] == "interrupted"
        lease.release_held()
        assert lease.holder(bucket) is None
        with lease.hold([bucket], "rerun", "duet pairs"):
            assert lease_body(s3, bucket)["owner"] == "rerun"


def test_a_second_writer_is_refused_while_the_lease_is_valid(s3, bucket):
    held = lease.Lease(bucket, "first", "duet pairs", ttl=60)
    held.acquire()
    try:
        with pytest.raises(lease.Busy, match=r"`duet pairs` \(pid \d+ on .*lease valid"):
            lease.Lease(bucket, "second", "duet pairs").acquire()
    finally:
        held.release()


def test_an_expired_lease_of_a_killed_run_is_taken_over(s3, bucket):
    stale = lease.Holder("killed", "elsewhere", 1, "duet shards", time.time() - 100,
                         time.time() - 1)  # fmt: skip
    key = bucket[len("s3://duet/") :] + "/" + lease.LOCK
    s3.client.put_object(Bucket="duet", Key=key, Body=stale.to_bytes())
    taker = lease.Lease(bucket, "taker", "duet shards", ttl=60)
    taker.acquire()
    try:
        assert lease_body(s3, bucket)["owner"] == "taker"
    finally:
        taker.release()


def test_of_two_writers_racing_for_a_free_lease_exactly_one_wins(s3, bucket, monkeypatch):
    """Both read "no lease" before either writes: the create-if-absent PUT lets one through."""
    first, second = (lease.Lease(bucket, o, "duet pairs", ttl=60) for o in ("a", "b"))
    monkeypatch.setattr(second.store, "get", lambda uri: None)  # it read before "a" wrote
    first.acquire()
    try:
        with pytest.raises(lease.Busy, match="was just taken"):
            second.acquire()
        assert lease_body(s3, bucket)["owner"] == "a"
    finally:
        first.release()


def test_a_lease_taken_over_while_running_stops_the_job_from_publishing(s3, bucket):
    held = lease.Lease(bucket, "slow", "duet shards", ttl=60)
    held.acquire()
    try:
        key = bucket[len("s3://duet/") :] + "/" + lease.LOCK
        thief = lease.Holder("thief", "h", 2, "duet shards", time.time(), time.time() + 60)
        s3.client.put_object(Bucket="duet", Key=key, Body=thief.to_bytes())
        with pytest.raises(lease.Lost, match="thief|duet shards"):
            lease.check(bucket, "slow")
    finally:
        held.release()
    assert lease_body(s3, bucket)["owner"] == "thief"  # not ours to delete
