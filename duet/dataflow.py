"""Dataflow Flex Template support: the template's parameters are generated from the CLI's own
parser (``python -m duet.dataflow > docker/flex-template.json``), and the launcher turns the
parameters Dataflow passes back into a ``duet`` command line."""

from __future__ import annotations

import argparse
import json
import sys

from duet.cli import build_parser
from duet.errors import UsageError

IMAGE = "REGION-docker.pkg.dev/PROJECT/duet/worker:0.1.0"
LOCAL_ONLY = {"playlists": {"workers", "spill-dir"}}
"""Options only a job's local runner reads (a template always names a runner)."""


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def template_jobs() -> dict[str, argparse.ArgumentParser]:
    """The Beam commands a template can launch; ``embeddings-<model>`` for the embeddings,
    ``features-import`` for feature imports."""
    commands = _subparsers(build_parser())
    jobs = {
        name: commands[name] for name in ("shards", "playlists", "cooccurrence", "splits", "pairs")
    }
    for group in ("embeddings", "features"):
        for action, parser in _subparsers(commands[group]).items():
            jobs[f"{group}-{action}"] = parser
    return jobs


def _options(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            yield max(action.option_strings, key=len).lstrip("-"), action


def template_spec(image: str = IMAGE) -> dict:
    """The Flex Template metadata: ``job`` plus every option of every job (all optional: a job
    that needs one says so when it starts)."""
    params: dict[str, dict] = {}
    users: dict[str, list[str]] = {}
    for job, parser in template_jobs().items():
        for name, action in _options(parser):
            if name in LOCAL_ONLY.get(job, ()):
                continue
            users.setdefault(name, []).append(job)
            params.setdefault(name, {"name": name, "label": name.replace("-", " "),
                                     "helpText": (action.help or name).replace("%%", "%"),
                                     "isOptional": True})  # fmt: skip
    for name, jobs in users.items():
        params[name]["helpText"] += f" [{', '.join(jobs)}]"
    choice = {"name": "job", "label": "job", "helpText": "the duet command to run",
           "isOptional": False, "regexes": ["^(" + "|".join(template_jobs()) + ")$"]}  # fmt: skip
    return {
        "image": image,
        "sdkInfo": {"language": "PYTHON"},
        "metadata": {
            "name": "duet",
            "description": "duet's Beam jobs in one template (--job picks the command): audio "
            "shards, feature imports, playlists, co-occurrence, embeddings, splits, pair "
            "manifests.",
            "parameters": [choice, *sorted(params.values(), key=lambda p: p["name"])],
        },
    }


def launcher_argv(args: list[str]) -> list[str]:
    """``--job=pairs --data=gs://b/d --counts=true ...`` → ``pairs --data=gs://b/d --counts``.

    Flags take ``true``/``false``; ``--input`` may list several files separated by spaces;
    everything else (Beam's own options) passes through."""
    jobs = [a.split("=", 1)[1] for a in args if a.startswith("--job=")]
    if len(jobs) != 1 or jobs[0] not in template_jobs():
        raise UsageError(f"--job must be one of {sorted(template_jobs())}")
    flags = {n for n, a in _options(template_jobs()[jobs[0]]) if a.nargs == 0}
    out = jobs[0].split("-", 1) if jobs[0].startswith(("embeddings-", "features-")) else [jobs[0]]
    for arg in args:
        name, _, value = arg.removeprefix("--").partition("=")
        if arg.startswith("--job="):
            continue
        if name in flags:
            if value.lower() not in ("true", "false", ""):
                raise UsageError(f"--{name} takes true or false, not {value!r}")
            out += [f"--{name}"] if value.lower() in ("true", "") else []
        elif name == "input":
            out += ["--input", *value.split()]
        else:
            out.append(arg)
    return out


if __name__ == "__main__":
    json.dump(template_spec(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
