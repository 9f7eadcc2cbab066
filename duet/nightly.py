"""Nightly regeneration: playlists → co-occurrence → embeddings → pairs, skipping what is
already current.

Each stage is the ``duet`` command a user would run. Its *key* is a digest of its command line
and the fingerprints of its inputs (for published folders, their ``_SUCCESS`` markers; for raw
files, names, sizes and mtimes). A stage runs only when its key differs from the one recorded
in ``OUT/nightly.json`` after its last success, or when its output is not published. Unchanged
playlists therefore skip every stage but the pairs run, whose id is itself derived from its
inputs, so a second night with no new data does nothing; a run that crashed resumes at the
stage (and, for pairs, the epoch) where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from duet import layout, publish, storage
from duet.errors import DuetError
from duet.pipelines.pairs import runs


@dataclass(frozen=True)
class Stage:
    name: str
    argv: tuple[str, ...]
    inputs: tuple[str, ...]
    output: str

    def key(self) -> str:
        body = {"argv": self.argv,
                "inputs": {u: publish.input_fingerprint(u) for u in self.inputs}}  # fmt: skip
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def plan(output: str, strategies: tuple[str, ...], epochs: str, seed: int, *,
         inputs: tuple[str, ...] = (), fmt: str = "mpd", tracks: str | None = None,
         keep: int | None = None, cf_model: str = "warp") -> list[Stage]:  # fmt: skip
    """The stages the requested strategies need, in order."""
    at = layout.at
    playlists, meta = at(output, layout.PLAYLISTS), at(output, layout.TRACK_META)
    stages = []
    if inputs:
        argv = ["playlists", "--input", *inputs, "--format", fmt, "--output", output]
        stages.append(Stage("playlists", tuple(argv + (["--tracks", tracks] if tracks else [])),
                            tuple(inputs) + ((tracks,) if tracks else ()), playlists))  # fmt: skip
    if "playlist_tco" in strategies:
        stages.append(Stage("cooccurrence", ("cooccurrence", "--playlists", playlists, "--output",
                            output, "--seed", str(seed)), (playlists,), at(output, layout.COOC['playlist'])))  # fmt: skip
    if "w2v" in strategies:
        stages.append(Stage("w2v", ("embeddings", "w2v", "--playlists", playlists, "--output",
                            output, "--seed", str(seed)), (playlists,), at(output, layout.embedding_folder("w2v"))))  # fmt: skip
    if {"cf", "multimodal"} & set(strategies):
        stages.append(Stage("cf", ("embeddings", "cf", "--model", cf_model, "--playlists",
                            playlists, "--output", output, "--seed", str(seed)), (playlists,),
                            at(output, layout.embedding_folder(layout.cf_model(cf_model)))))  # fmt: skip
    if "multimodal" in strategies:
        stages.append(Stage("genre-w2v", ("embeddings", "genre-w2v", "--track-meta", meta,
                            "--output", output, "--seed", str(seed)), (meta,),
                            at(output, layout.embedding_folder(layout.GENRE_W2V))))  # fmt: skip
    pairs_argv = ["pairs", "--data", output, "--strategies", ",".join(strategies), "--epochs",
                  epochs, "--seed", str(seed)] + (["--keep", str(keep)] if keep else [])  # fmt: skip
    upstream = tuple(s.output for s in stages)
    stages.append(Stage("pairs", tuple(pairs_argv), upstream, at(output, layout.LATEST)))
    return stages


def _read_state(output: str) -> dict:
    """The keys recorded after each stage's last success; unreadable means none (every stage
    then runs, which is always safe)."""
    try:
        state = publish.parse(storage.read_bytes(layout.at(output, layout.NIGHTLY)))
    except OSError:
        return {}
    return state or {}


def _published(stage: Stage, output: str) -> bool:
    if stage.name == "pairs":
        try:
            runs.read_run(output)
        except publish.NotPublished:
            return False
        return True
    return publish.read_success(stage.output) is not None


class StageFailed(DuetError):
    """A stage of the nightly chain failed: the stages after it did not run."""


def run(stages: list[Stage], output: str, beam_args: list[str],
        invoke: Callable[[list[str]], int], log: Callable[[str], None] = print,
        options: list[str] | None = None) -> dict[str, str]:  # fmt: skip
    """Run the stages that are not current, each by ``invoke`` (its ``duet`` command line, then
    ``options`` such as ``--allow-shrink``, which do not enter the stage's key, then
    ``beam_args``); returns {stage: "ran" | "skipped"}."""
    state = _read_state(output)
    done: dict[str, str] = {}
    for number, stage in enumerate(stages, start=1):
        key = stage.key()
        step = f"[nightly {number}/{len(stages)}] {stage.name}"
        if stage.name != "pairs" and state.get(stage.name) == key and _published(stage, output):
            log(f"{step}: inputs unchanged, skipped")
            done[stage.name] = "skipped"
            continue
        log(f"{step}: duet {' '.join(stage.argv)}")
        start = time.monotonic()
        code = invoke([*stage.argv, *(options or []), *beam_args])
        if code:
            raise StageFailed(f"stage {stage.name} failed with exit code {code} (fix what it "
                              "printed above and re-run: finished stages are skipped; the stages "
                              "after it did not run, and every published output stands)")  # fmt: skip
        state[stage.name] = key
        storage.write_bytes(layout.at(output, layout.NIGHTLY), publish.dumps(state))
        log(f"{step}: done in {time.monotonic() - start:.1f} s")
        done[stage.name] = "ran"
    return done
