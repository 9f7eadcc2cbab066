"""Imported features, element by element: the declared profile, one array's checks and
conversion, and the listings of a Melon tree, a folder, a glob and a manifest."""

import io
import json
import os
import pickle

import numpy as np
import pytest

from duet.pipelines.features import profile, sources
from duet.pipelines.features.arrays import ArrayError, ArraySpec, to_frames

MELON = ArraySpec(n_mels=48)


def npy(array: np.ndarray, *, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def refused(data: bytes, spec: ArraySpec = MELON) -> tuple[str, str]:
    with pytest.raises(ArrayError) as caught:
        to_frames(data, spec)
    return caught.value.stage, caught.value.message


# ---------------------------------------------------------------- profile


def test_melon_profile_is_built_in_and_declares_the_papers_values():
    melon = profile.presets()["melon"]
    assert (melon.n_mels, melon.sample_rate, melon.n_fft, melon.hop_length, melon.log) == (
        48, 16000, 512, 256, "db")  # fmt: skip
    assert melon.stream == "mel-melon" and melon.to_dict()["imported"] is True


def test_a_profile_yaml_declares_another_dataset(tmp_path):
    path = tmp_path / "jamendo.yaml"
    path.write_text("n_mels: 96\nsample_rate: 16000\nhop_length: 256\nlog: null\n")
    got = profile.resolve(str(path))
    assert (got.name, got.stream, got.n_mels, got.log) == ("jamendo", "mel-jamendo", 96, None)


@pytest.mark.parametrize("name", ["ferraro", "choi", "alonso"])
def test_an_imported_profile_never_takes_the_name_of_a_computed_one(name, tmp_path):
    path = tmp_path / f"{name}.yaml"
    path.write_text("n_mels: 48\nsample_rate: 16000\nhop_length: 256\n")
    with pytest.raises(profile.ProfileError, match="duet's own computed mel profile"):
        profile.resolve(str(path))


def test_profile_yaml_with_unknown_or_missing_keys_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("n_mels: 48\nsample_rate: 16000\nhop_length: 256\nbins: 3\n")
    (tmp_path / "b.yaml").write_text("n_mels: 48\n")
    with pytest.raises(profile.ProfileError, match="unknown feature profile parameter"):
        profile.resolve(str(tmp_path / "a.yaml"))
    with pytest.raises(profile.ProfileError, match="missing hop_length, sample_rate"):
        profile.resolve(str(tmp_path / "b.yaml"))
    with pytest.raises(profile.ProfileError, match="unknown feature profile 'nope'"):
        profile.resolve("nope")


# ---------------------------------------------------------------- one array


@pytest.mark.parametrize("dtype", ["<f4", ">f4", "<f8", "<f2", "<i2"])
def test_a_frequency_major_array_becomes_its_float16_transpose(dtype):
    source = (np.random.default_rng(0).normal(-40, 20, (48, 300))).astype(dtype)
    frames, info = to_frames(npy(source), MELON)
    assert frames.dtype == np.float16 and frames.flags.c_contiguous and frames.shape == (300, 48)
    np.testing.assert_array_equal(frames, source.T.astype(np.float16))
    assert info == {"source_dtype": dtype if dtype != "<i2" else "<i2",
                    "source_shape": [48, 300], "source_orientation": "bands-frames"}  # fmt: skip


def test_time_major_and_fortran_ordered_sources_read_the_same():
    source = np.random.default_rng(1).normal(size=(300, 48)).astype(np.float32)
    time_major = to_frames(npy(source), ArraySpec(48, "frames-bands"))[0]
    fortran = to_frames(npy(np.asfortranarray(source.T)), MELON)[0]
    np.testing.assert_array_equal(time_major, source.astype(np.float16))
    np.testing.assert_array_equal(fortran, source.astype(np.float16))


def test_bad_arrays_are_refused_with_stage_and_reason():
    good = np.zeros((48, 300), np.float32)
    nan = good.copy()
    nan[3, 7], nan[4, 9] = np.nan, np.inf
    cases = {
        "forty bands": (npy(np.zeros((40, 300), np.float32)), "validate", "40 bands"),
        "three dims": (npy(np.zeros((1, 48, 300), np.float32)), "validate", "3 dimension(s)"),
        "one dim": (npy(np.zeros(300, np.float32)), "validate", "1 dimension(s)"),
        "zero frames": (npy(np.zeros((48, 0), np.float32)), "validate", "zero frames"),
        "short": (npy(np.zeros((48, 255), np.float32)), "validate", "255 frames < 256"),
        "non-finite": (npy(nan), "validate", "2 non-finite value(s)"),
        "over float16": (npy(np.full((48, 300), 1e6)), "validate", "float16's range"),
        "truncated": (npy(good)[:-1000], "parse", "truncated"),
        "trailing": (npy(good) + b"\0" * 10, "parse", "10 bytes after the array data"),
        "complex": (npy(good.astype(np.complex64)), "parse", "not a real number type"),
        "text": (b"not an array at all", "parse", "not a .npy file"),
        "empty": (b"", "read", "empty file"),
        "header cut": (npy(good)[:20], "parse", "unreadable .npy header"),
    }  # fmt: skip
    for name, (data, stage, reason) in cases.items():
        got = refused(data)
        assert got[0] == stage and reason in got[1], (name, got)


class _Boom:
    """Unpickling this calls os.system: the attack a pickled .npy carries."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickled_npy_is_refused_and_never_loaded(tmp_path):
    marker = str(tmp_path / "pwned")
    data = npy(np.array([_Boom(marker)], dtype=object), allow_pickle=True)
    assert pickle.dumps(_Boom(marker))  # the payload really is a pickle that would run
    assert refused(data) == ("parse", "pickled .npy (object dtype) is refused and never loaded")
    assert not os.path.exists(marker)


def test_a_longer_limit_and_shorter_crop_are_options():
    source = np.zeros((48, 100), np.float32)
    assert to_frames(npy(source), ArraySpec(48, min_frames=64))[0].shape == (100, 48)
    assert "too long" in refused(npy(source), ArraySpec(48, min_frames=10, max_frames=99))[1]


# ---------------------------------------------------------------- listings


def _save(path, array) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, array)


def test_melon_listing_takes_song_ids_from_the_id_thousands_layout(tmp_path):
    root = tmp_path / "arena_mel"
    for rel in ("0/7.npy", "1/1234.npy", "649/649090.npy", "2/1234.npy", "0/007.npy", "0/x.npy",
                "9.npy"):  # fmt: skip
        _save(str(root / rel), np.zeros((48, 300), np.float32))
    (root / "0" / "notes.txt").write_text("ignored")
    listing = sources.list_melon(str(root))
    assert [r.track_id for r in listing.rows] == ["7", "1234", "649090"]
    assert all(r.size == os.path.getsize(r.uri) and r.mtime for r in listing.rows)
    reasons = sorted(f["error"] for f in listing.failures)
    assert reasons == ["0/007.npy: not a Melon song file (<song_id>.npy)",
                       "0/x.npy: not a Melon song file (<song_id>.npy)",
                       "2/1234.npy: Melon keeps song 1234 in 1/1234.npy",
                       "9.npy: Melon keeps song 9 in 0/9.npy"]  # fmt: skip
    assert listing.input_rows == 7 and listing.ignored == 1 and len(listing.fingerprint) == 64


def test_generic_listing_ids_come_from_the_file_name_or_path(tmp_path):
    for rel in ("a/x.npy", "b/c/y.npy", "b/x.npy"):
        _save(str(tmp_path / "feats" / rel), np.zeros((48, 300), np.float32))
    (tmp_path / "feats" / "README").write_text("ignored")
    folder = sources.list_npy(str(tmp_path / "feats"), "stem")
    assert [r.track_id for r in folder.rows] == ["x", "y", "x"] and folder.ignored == 1
    by_path = sources.list_npy(str(tmp_path / "feats" / "**" / "*.npy"), "path")
    assert [r.track_id for r in by_path.rows] == ["a/x", "b/c/y", "b/x"]


def test_a_manifest_names_arrays_with_ids_and_splits(tmp_path):
    _save(str(tmp_path / "one.npy"), np.zeros((48, 300), np.float32))
    manifest = tmp_path / "arrays.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in (
        {"track_id": "t1", "audio_uri": "one.npy", "split": "train"},
        {"track_id": "t2", "audio_uri": "two.npy"}, {"track_id": "", "audio_uri": "x.npy"})))  # fmt: skip
    listing = sources.list_npy(str(manifest))
    assert [(r.track_id, os.path.basename(r.uri), r.split) for r in listing.rows] == [
        ("t1", "one.npy", "train"), ("t2", "two.npy", None)]  # fmt: skip
    assert [f["stage"] for f in listing.failures] == ["manifest"]


def test_array_ids_of_a_folder_are_its_file_stems(tmp_path):
    _save(str(tmp_path / "m" / "0" / "12.npy"), np.zeros((2, 2)))
    _save(str(tmp_path / "m" / "3" / "3001.npy"), np.zeros((2, 2)))
    assert sources.array_ids(str(tmp_path / "m")) == ["12", "3001"]
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "a.mp3").write_bytes(b"x")
    with pytest.raises(sources.SourceError, match="neither a published dataset root"):
        sources.array_ids(str(tmp_path / "audio"))


class _Cycle:
    """Cyclic garbage with a finaliser: the collector runs Python code mid-parse, where a
    thread switch can happen."""

    def __del__(self):
        sum(range(50))


def test_headers_parse_correctly_from_many_threads_at_once():
    """CPython 3.11 can fail concurrent ``ast.literal_eval`` calls (numpy's header parser)
    with a spurious SystemError (python/cpython#106905); read-ahead threads must not."""
    import gc
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from duet.pipelines.features.arrays import read_header

    data = npy(np.zeros((48, 300), np.float32))
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(1e-6)
    gc.set_threshold(5, 1, 1)

    def parse(_):
        for _ in range(3):
            a, b = _Cycle(), _Cycle()
            a.other, b.other = b, a
        return read_header(data).shape

    try:
        with ThreadPoolExecutor(8) as pool:
            shapes = set(pool.map(parse, range(40_000)))
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)
    assert shapes == {(48, 300)}
