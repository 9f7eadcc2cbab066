"""Nightly regeneration: stages skip when their inputs did not change, a crash resumes, and the
schedule examples in docker/schedule are valid duet commands."""

import ast
import json
import os
import shlex
import shutil

import pytest
import yaml

from duet import nightly
from duet.cli import build_parser, main
from duet.pipelines.pairs import runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEDULE = os.path.join(ROOT, "docker", "schedule")
ARGS = ["--strategies", "playlist_co,playlist_tco,w2v", "--epochs", "0:2", "--seed", "1"]


@pytest.fixture()
def raw(catalog, tmp_path):
    folder = tmp_path / "raw"
    shutil.copytree(os.path.join(catalog, "mpd"), folder)
    return str(folder)


def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def nightly_run(raw: str, out: str, capsys, *extra: str) -> dict[str, str]:
    """What each stage did: "ran" or "skipped"."""
    assert main(["nightly", "--input", raw, "--output", out, *ARGS, *extra]) == 0
    done = {}
    for line in capsys.readouterr().out.splitlines():
        words = line.split()
        if line.startswith("[nightly ") and words[2].endswith(":"):  # [nightly 2/5] stage: ...
            if words[3] == "duet":
                done[words[2][:-1]] = "ran"
            elif "skipped" in line:
                done[words[2][:-1]] = "skipped"
    return done


def test_second_night_without_new_playlists_skips_every_table(raw, tmp_path, capsys):
    out = str(tmp_path / "data")
    first = nightly_run(raw, out, capsys)
    assert first == dict.fromkeys(("playlists", "cooccurrence", "w2v", "pairs"), "ran")
    run = runs.latest_run(out)
    second = nightly_run(raw, out, capsys)
    assert second == {"playlists": "skipped", "cooccurrence": "skipped", "w2v": "skipped",
                      "pairs": "ran"}  # fmt: skip
    assert runs.latest_run(out) == run
    body = json.loads(read(os.path.join(out, "pairs", run, "_SUCCESS")))
    assert body["skipped_epochs"] == 6


def test_new_playlists_regenerate_tables_and_publish_a_new_run(raw, tmp_path, capsys):
    out = str(tmp_path / "data")
    nightly_run(raw, out, capsys)
    before = runs.latest_run(out)
    slice_file = sorted(os.listdir(raw))[0]
    data = json.loads(read(os.path.join(raw, slice_file)))
    for playlist in data["playlists"]:
        playlist["pid"] += 100_000
        playlist["tracks"] = playlist["tracks"][::-1]
    with open(os.path.join(raw, "mpd.slice.100000-100999.json"), "w") as f:
        json.dump(data, f)
    nightly_run(raw, out, capsys)
    after = runs.latest_run(out)
    assert after != before
    counts = json.loads(read(os.path.join(out, "playlists.parquet", "_SUCCESS")))["counts"]
    assert counts["playlists"] > 0


def test_a_crashed_night_resumes_at_the_failed_stage(raw, tmp_path, capsys):
    out = str(tmp_path / "data")
    stages = nightly.plan(out, ("playlist_co", "playlist_tco"), "0:2", 0, inputs=(raw,))
    calls = []

    def flaky(argv):
        calls.append(argv[0])
        if argv[0] == "cooccurrence" and calls.count("cooccurrence") == 1:
            return 3
        return main(argv)

    with pytest.raises(nightly.StageFailed, match="stage cooccurrence failed"):
        nightly.run(stages, out, [], invoke=flaky)
    done = nightly.run(stages, out, [], invoke=flaky)
    assert done == {"playlists": "skipped", "cooccurrence": "ran", "pairs": "ran"}
    assert calls == ["playlists", "cooccurrence", "cooccurrence", "pairs"]


def test_a_reader_keeps_the_previous_run_until_the_new_one_is_complete(raw, tmp_path, capsys):
    out = str(tmp_path / "data")
    nightly_run(raw, out, capsys)
    run = runs.latest_run(out)
    stages = nightly.plan(out, ("playlist_co",), "0:3", 2, inputs=(raw,))

    def crash_in_pairs(argv):
        if argv[0] == "pairs":
            assert runs.latest_run(out) == run  # still the old, complete run
            raise RuntimeError("killed")
        return main(argv)

    with pytest.raises(RuntimeError, match="killed"):
        nightly.run(stages, out, [], invoke=crash_in_pairs)
    assert runs.latest_run(out) == run


# ---------------------------------------------------------------- schedule examples


def duet_argv(command: str) -> list[str]:
    words = shlex.split(command)
    return words[words.index("duet") + 1 :]


def parses(argv: list[str]) -> None:
    args, beam = build_parser().parse_known_args(argv)
    assert args.func, argv
    assert all(a.startswith("--") or not a.startswith("-") for a in beam)


def test_kubernetes_cronjob_runs_a_valid_nightly_command():
    spec = yaml.safe_load(read(os.path.join(SCHEDULE, "nightly-cronjob.yaml")))
    assert spec["kind"] == "CronJob" and len(spec["spec"]["schedule"].split()) == 5
    assert spec["spec"]["concurrencyPolicy"] == "Forbid"
    container = spec["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["duet"]
    parses(container["args"])


def test_crontab_line_calls_make_nightly():
    lines = [line for line in read(os.path.join(SCHEDULE, "crontab")).splitlines()
             if line.strip() and not line.startswith("#") and "=" not in line.split()[0]]  # fmt: skip
    assert len(lines) == 1
    fields = lines[0].split()
    assert all(f == "*" or f.isdigit() for f in fields[:5]) and "make nightly" in lines[0]
    makefile = read(os.path.join(ROOT, "Makefile"))
    assert "\nnightly: setup\n" in makefile


def test_airflow_dag_launches_valid_duet_commands_on_dataflow():
    source = read(os.path.join(SCHEDULE, "airflow_nightly_dag.py"))
    tree = ast.parse(source)
    stages = next(n.value for n in tree.body if isinstance(n, ast.Assign)
                  and getattr(n.targets[0], "id", "") == "STAGES")  # fmt: skip
    assert [k.value for k in stages.keys] == ["playlists", "cooccurrence", "w2v", "pairs"]
    for value in stages.values:
        command = "".join(v.value if isinstance(v, ast.Constant) else "gs://b/x"
                          for v in value.values)  # fmt: skip
        parses(duet_argv(command) + ["--runner", "DataflowRunner"])
    assert "--runner DataflowRunner" in source and "use_runner_v2" in source
