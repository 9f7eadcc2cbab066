"""Checkpoints: restricted unpickling (no code from data) and a content checksum (no garbage
weights), directly and through ``duet train --resume`` / ``duet embed``."""

import io
import os
import subprocess
import sys

import pytest
import torch

from duet.training import checkpoint


class _RunsCode:
    """Unpickling this calls ``os.system``: what a hostile checkpoint would carry."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _content() -> dict:
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.BatchNorm1d(256))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(4, 64)).sum().backward()
    optimizer.step()
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "state": {"epoch": 1, "step": 3, "global_step": 7, "run": "run-abc", "run_epoch": 1},
            "recipe": {"name": "alonso-co", "lr": 1e-4, "views": [{"name": "a", "stream": None}]},
            "dims": {}}  # fmt: skip


def _hostile(tmp_path) -> tuple[bytes, str]:
    marker = str(tmp_path / "code-ran")
    buffer = io.BytesIO()
    torch.save({"format": checkpoint.FORMAT, "sha256": "0", "content": {"x": _RunsCode(marker)}},
               buffer)  # fmt: skip
    return buffer.getvalue(), marker


def test_a_checkpoint_reads_back_its_tensors_optimizer_and_state():
    content = _content()
    loaded = checkpoint.loads(checkpoint.dumps(content), "ckpt")
    assert loaded["state"] == content["state"] and loaded["recipe"] == content["recipe"]
    assert all(torch.equal(loaded["model"][k], v) for k, v in content["model"].items())
    assert checkpoint.content_digest(loaded) == checkpoint.content_digest(content)


def test_a_checkpoint_whose_pickle_would_call_os_system_is_refused_unexecuted(tmp_path):
    blob, marker = _hostile(tmp_path)
    with pytest.raises(checkpoint.CheckpointError, match="refused.*system"):
        checkpoint.loads(blob, "evil.pt")
    assert not os.path.exists(marker)


def test_bytes_flipped_in_the_middle_of_a_checkpoint_are_refused():
    blob = bytearray(checkpoint.dumps(_content()))
    middle = len(blob) // 2
    blob[middle : middle + 4] = bytes(b ^ 0xFF for b in blob[middle : middle + 4])
    with pytest.raises(checkpoint.CheckpointError, match="checksum mismatch|corrupt"):
        checkpoint.loads(bytes(blob), "ckpt")


def test_a_flipped_byte_anywhere_is_refused_or_changes_nothing():
    """Zip padding and CRC fields do not hold content; every other byte is covered."""
    content = _content()
    clean = bytes(checkpoint.dumps(content))
    digest = checkpoint.content_digest(content)
    for position in range(0, len(clean), max(1, len(clean) // 97)):
        blob = bytearray(clean)
        blob[position] ^= 0x10
        try:
            loaded = checkpoint.loads(bytes(blob), "ckpt")
        except checkpoint.CheckpointError:
            continue
        assert checkpoint.content_digest(loaded) == digest, position


def test_a_checkpoint_from_another_tool_is_refused_with_a_reason():
    buffer = io.BytesIO()
    torch.save({"model": {"w": torch.zeros(2)}}, buffer)
    with pytest.raises(checkpoint.CheckpointError, match="not a duet-checkpoint"):
        checkpoint.loads(buffer.getvalue(), "other.pt")


def _duet(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "duet.cli", *argv], capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_duet_embed_refuses_a_hostile_checkpoint_in_one_line(tmp_path, published):
    blob, marker = _hostile(tmp_path)
    (tmp_path / "evil.pt").write_bytes(blob)
    result = _duet("embed", "--checkpoint", str(tmp_path / "evil.pt"), "--data", published,
                   "--output", str(tmp_path / "e.parquet"))  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().startswith("duet embed: ") and len(result.stderr.splitlines()) == 1
    assert "refused" in result.stderr and not os.path.exists(marker)
    assert not (tmp_path / "e.parquet").exists()


def test_duet_train_resume_refuses_a_corrupt_checkpoint_in_one_line(tmp_path, published):
    out = tmp_path / "run"
    out.mkdir()
    blob = bytearray(checkpoint.dumps(_content()))
    middle = len(blob) // 2
    blob[middle] ^= 0xFF
    (out / "checkpoint.pt").write_bytes(bytes(blob))
    result = _duet("train", "--recipe", "alonso-co", "--data", published, "--out", str(out),
                   "--resume", "--workers", "0", "--quiet")  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.strip().startswith("duet train: ") and len(result.stderr.splitlines()) == 1
    assert "checksum mismatch" in result.stderr or "corrupt" in result.stderr
