"""The mel implementation equals librosa's for every published profile."""

import librosa
import numpy as np
import pytest

from duet.pipelines.audio import mel
from duet.pipelines.audio.mel import MelProfile, log_mel, log_mels, presets, resolve_profile


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    rng = np.random.default_rng(1)
    t = np.arange(16000 * 7) / 16000
    y = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))
    y[:16000] *= 1e-4
    return y.astype(np.float32)


def librosa_log_mel(y: np.ndarray, p: MelProfile) -> np.ndarray:
    power = librosa.feature.melspectrogram(
        y=y, sr=p.sample_rate, n_fft=p.n_fft, hop_length=p.hop_length, win_length=p.win_length,
        n_mels=p.n_mels, fmin=p.fmin, fmax=p.fmax, htk=p.htk, norm=p.norm, power=2.0,
    )  # fmt: skip
    return mel.apply_log(power.T, p)


@pytest.mark.parametrize("name", ["choi", "alonso", "ferraro"])
def test_preset_matches_librosa_within_1e3_of_dynamic_range(signal, name):
    profile = presets()[name]
    ours = log_mel(signal, profile)
    ref = librosa_log_mel(signal, profile)
    assert ours.shape == ref.shape == (1 + len(signal) // profile.hop_length, profile.n_mels)
    assert np.abs(ours - ref).max() <= 1e-3 * np.ptp(ref)


@pytest.mark.parametrize("name", ["choi", "alonso", "ferraro"])
def test_stored_float16_mel_stays_within_1e3_of_dynamic_range(signal, name):
    profile = presets()[name]
    ref = librosa_log_mel(signal, profile)
    stored = log_mel(signal, profile).astype(np.float16).astype(np.float32)
    assert np.abs(stored - ref).max() <= 1e-3 * np.ptp(ref)


@pytest.mark.filterwarnings("ignore:Empty filters")
def test_custom_htk_profile_without_norm_matches_librosa(signal):
    profile = MelProfile(name="pemr", sample_rate=16000, n_fft=256, hop_length=128, n_mels=128,
                         htk=True, norm=None, fmin=30.0, fmax=7600.0, log="ln", amin=1e-6)  # fmt: skip
    ours = log_mel(signal, profile)
    ref = librosa_log_mel(signal, profile)
    assert np.abs(ours - ref).max() <= 1e-3 * np.ptp(ref)


def test_filterbank_equals_librosa_filters_mel():
    for profile in presets().values():
        ref = librosa.filters.mel(sr=profile.sample_rate, n_fft=profile.n_fft, n_mels=profile.n_mels,
                                  htk=profile.htk, norm=profile.norm)  # fmt: skip
        np.testing.assert_allclose(mel.mel_filterbank(profile), ref.T, atol=1e-7)


def test_profiles_sharing_framing_give_the_same_result_together_and_alone(signal):
    together = log_mels(signal, list(presets().values()))
    for name, profile in presets().items():
        np.testing.assert_array_equal(together[name], log_mel(signal, profile))


def test_alonso_compression_is_log10_of_one_plus_10000x():
    p = presets()["alonso"]
    x = np.array([[0.0, 1e-4, 1.0]], np.float32)
    np.testing.assert_allclose(mel.apply_log(x, p), np.log10(1 + 10000 * x), rtol=1e-6)


def test_custom_profile_from_yaml(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("sample_rate: 22050\nn_fft: 1024\nhop_length: 512\nn_mels: 64\nlog: db\n")
    profile = resolve_profile(str(path))
    assert (profile.name, profile.sample_rate, profile.n_mels, profile.stream) == (
        "tiny",
        22050,
        64,
        "mel-tiny",
    )


def test_a_profile_file_reads_1e_10_as_a_number_like_a_recipe_does(tmp_path):
    path = tmp_path / "quiet.yaml"
    path.write_text("sample_rate: 16000\nn_fft: 512\nhop_length: 256\nn_mels: 48\namin: 1e-12\n")
    assert resolve_profile(str(path)).amin == 1e-12


def test_unknown_profile_parameter_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("n_mel: 64\n")
    with pytest.raises(ValueError, match="unknown mel profile parameter.*n_mel"):
        resolve_profile(str(path))


def test_unknown_profile_name_lists_presets():
    with pytest.raises(ValueError, match="alonso"):
        resolve_profile("nope")
