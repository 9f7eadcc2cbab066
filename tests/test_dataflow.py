"""Dataflow launch: the make targets' commands, the Flex Template spec and launcher, the images.
(Launching on Dataflow itself needs a Google Cloud project: see the README.)"""

import json
import os
import re
import shlex
import subprocess
from importlib import metadata

import pytest
from apache_beam.options.pipeline_options import (
    DebugOptions,
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
    WorkerOptions,
)

from duet import dataflow
from duet.cli import build_parser
from duet.errors import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIABLES = ["PROJECT=my-project", "REGION=europe-west1", "BUCKET=my-bucket",
             "IMAGE=europe-west1-docker.pkg.dev/my-project/duet/worker:0.1.0"]  # fmt: skip


def read(name: str) -> str:
    with open(os.path.join(ROOT, name)) as f:
        return f.read()


def make_dry_run(target: str, *variables: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-n", "-s", target, *variables], cwd=ROOT, capture_output=True,
                          text=True)  # fmt: skip


@pytest.mark.parametrize(
    "target, command", [("dataflow-shards", "shards"), ("dataflow-pairs", "pairs")]
)
def test_make_target_builds_a_complete_dataflow_launch_command(target, command):
    result = make_dry_run(target, *VARIABLES)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if f"duet {command} " in line)
    argv = shlex.split(line)[1:]
    args, beam_args = build_parser().parse_known_args(argv)
    assert args.command == command
    assert all(
        v.startswith("gs://my-bucket/") for v in (getattr(args, "output", None) or args.data,)
    )
    options = PipelineOptions(beam_args)
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    cloud = options.view_as(GoogleCloudOptions)
    assert (cloud.project, cloud.region) == ("my-project", "europe-west1")
    assert cloud.temp_location == "gs://my-bucket/tmp" and cloud.staging_location.startswith(
        "gs://"
    )
    assert cloud.job_name == f"duet-{command}"
    assert options.view_as(WorkerOptions).sdk_container_image.endswith("duet/worker:0.1.0")
    assert "use_runner_v2" in options.view_as(DebugOptions).experiments


def test_make_target_names_the_missing_variable():
    result = make_dry_run("dataflow-shards", "PROJECT=p", "REGION=r", "BUCKET=b")
    assert result.returncode != 0 and "IMAGE is required" in result.stderr


def test_flex_template_spec_is_generated_from_the_cli():
    spec = json.loads(read("docker/flex-template.json"))
    assert spec == dataflow.template_spec()  # regenerate: python -m duet.dataflow
    params = spec["metadata"]["parameters"]
    names = [p["name"] for p in params]
    assert len(names) == len(set(names)) and spec["sdkInfo"]["language"] == "PYTHON"
    assert all(
        re.fullmatch(r"[a-z][a-z0-9-]*", n) and p["helpText"]
        for n, p in zip(names, params, strict=True)
    )
    job = params[0]
    assert job["name"] == "job" and not job["isOptional"]
    pattern = re.compile(job["regexes"][0])
    assert all(pattern.match(j) for j in dataflow.template_jobs()) and not pattern.match("train")
    for required in ("tracks", "output", "playlists", "data", "strategies", "track-meta"):
        assert required in names


@pytest.mark.parametrize("params, expected", [
    (["--job=shards", "--tracks=gs://b/t.parquet", "--output=gs://b/d"], ["shards"]),
    (["--job=cooccurrence", "--playlists=gs://b/d/playlists.parquet", "--output=gs://b/d",
      "--counts=true"], ["cooccurrence", "--counts"]),
    (["--job=playlists", "--input=gs://b/raw/a.json gs://b/raw/b.json", "--format=mpd",
      "--output=gs://b/d"], ["--input", "gs://b/raw/a.json", "gs://b/raw/b.json"]),
    (["--job=embeddings-cf", "--playlists=gs://b/p", "--output=gs://b/d", "--deterministic=false"],
     ["embeddings", "cf"]),
    (["--job=features-import", "--input=gs://b/melon/arena_mel", "--output=gs://b/d"],
     ["features", "import", "--input", "gs://b/melon/arena_mel"]),
    (["--job=pairs", "--data=gs://b/d", "--strategies=playlist_co", "--epochs=0:50",
      "--runner=DataflowRunner", "--project=p"], ["pairs", "--runner=DataflowRunner"]),
])  # fmt: skip
def test_flex_launcher_turns_parameters_into_a_duet_command(params, expected):
    argv = dataflow.launcher_argv(params)
    assert all(word in argv for word in expected)
    assert "--deterministic" not in argv
    args, beam_args = build_parser().parse_known_args(argv)
    assert args.func and all(a.startswith("--") for a in beam_args)


def test_flex_launcher_rejects_a_missing_or_unknown_job():
    with pytest.raises(UsageError, match="--job must be one of"):
        dataflow.launcher_argv(["--output=gs://b/d"])
    with pytest.raises(UsageError, match="--job must be one of"):
        dataflow.launcher_argv(["--job=train"])


def test_worker_image_matches_the_installed_beam_and_launches_the_template():
    text = read("docker/worker.Dockerfile")
    beam = metadata.version("apache-beam")
    assert f"FROM apache/beam_python3.11_sdk:{beam}" in text
    assert "ffmpeg" in text and "'.[gcp,aws]'" in text
    launcher = re.search(r"FLEX_TEMPLATE_PYTHON_PY_FILE=/opt/duet/(\S+)", text).group(1)
    assert os.path.exists(os.path.join(ROOT, launcher))
    assert "python311-template-launcher-base" in text


def test_trainer_image_uses_cuda_torch_and_keeps_it():
    text = read("docker/trainer.Dockerfile")
    assert re.search(r"FROM pytorch/pytorch:\S+cuda", text) and "torch.version.cuda" in text
