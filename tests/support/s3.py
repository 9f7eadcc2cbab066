"""A real S3-compatible endpoint for tests: moto's server on 127.0.0.1, and a client to
upload a local tree and read a prefix back."""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator

import boto3
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from tests.support.helpers import by_logical

BUCKET = "duet"


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


@contextlib.contextmanager
def moto_s3() -> Iterator[S3]:
    """A moto S3 server on 127.0.0.1 with the bucket ``duet``, Beam's FileSystems and the AWS
    variables (for fsspec) pointed at it; everything is restored afterwards."""
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
    try:
        yield store
    finally:
        _restore(saved)
        FileSystems.set_options(PipelineOptions([]))
        server.stop()


def _restore(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


VOLATILE = ("_SUCCESS", ".json")  # markers and reports record input URIs and mtimes


def assert_same_outputs(local: dict[str, bytes], remote: dict[str, bytes], skip=()) -> None:
    """Same file names; same bytes except markers/reports and tables that hold input URIs."""
    assert sorted(local) == sorted(remote)
    compared = [k for k in local if not k.endswith(VOLATILE) and not k.startswith(tuple(skip))]
    assert compared
    different = [k for k in compared if local[k] != remote[k]]
    assert not different, different


def assert_same_generation(local: dict[str, bytes], remote: dict[str, bytes], skip=()) -> None:
    """Two shard sets made from the same inputs at different URIs (local files, a bucket):
    their tags differ (they name the inputs), so files are compared by logical name, and the
    index without its ``shard`` column (the stored tar names)."""
    local, remote = by_logical(local), by_logical(remote)
    assert_same_outputs(local, remote, skip=(*skip, "index/"))
    parts = sorted(k for k in local if k.startswith("index/"))
    assert parts
    for k in parts:
        mine, theirs = (
            pq.read_table(io.BytesIO(t[k])).drop_columns("shard") for t in (local, remote)
        )
        assert mine.equals(theirs), k
