"""Log-mel spectrograms: one implementation, numerically equal to librosa's.

``melspectrogram`` reproduces ``librosa.feature.melspectrogram`` (centred frames with zero
padding, periodic Hann window, power 2, Slaney or HTK mel scale, Slaney area normalisation)
and then applies the profile's log. Output is time-major ``[frames, n_mels]`` so that a crop
of frames is one contiguous byte range in the stored ``.npy``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass

import numpy as np
import scipy.fft

from duet.errors import DuetError
from duet.presets import resolve, shipped

_BLOCK_FRAMES = 4096
_PROFILE_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,31}$")
LOGS = ("db", "log10_1p", "ln")


@dataclass(frozen=True)
class MelProfile:
    """Every parameter of one log-mel feature; stream name ``mel-<name>``."""

    name: str
    sample_rate: int = 16000
    n_fft: int = 512
    hop_length: int = 256
    win_length: int | None = None
    n_mels: int = 96
    fmin: float = 0.0
    fmax: float | None = None
    htk: bool = False
    norm: str | None = "slaney"
    log: str = "db"
    log_scale: float = 1.0
    amin: float = 1e-10

    def __post_init__(self):
        if not _PROFILE_NAME.match(self.name):
            raise ValueError(f"mel profile name {self.name!r} must match {_PROFILE_NAME.pattern}")
        if self.log not in LOGS:
            raise ValueError(
                f"mel profile {self.name}: log must be one of {LOGS}, not {self.log!r}"
            )
        if self.norm not in (None, "slaney"):
            raise ValueError(f"mel profile {self.name}: norm must be 'slaney' or null")
        if not (self.hop_length > 0 and self.n_fft > 0 and self.n_mels > 0):
            raise ValueError(f"mel profile {self.name}: n_fft, hop_length, n_mels must be > 0")
        if self.sample_rate < 1000:
            raise ValueError(f"mel profile {self.name}: sample_rate {self.sample_rate} is too low")

    @property
    def stream(self) -> str:
        return f"mel-{self.name}"

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@functools.cache
def presets() -> dict[str, MelProfile]:
    """The published systems' profiles, shipped as YAML files in ``pipelines/audio/profiles``."""
    return shipped("duet.pipelines.audio", "profiles", MelProfile, "mel profile", UnknownProfile)


def resolve_profile(spec: str) -> MelProfile:
    """A preset name (``alonso``) or the path of a YAML file with custom parameters.

    Raises:
        UnknownProfile: neither, or a file with parameters a mel profile does not have."""
    return resolve(spec, presets(), MelProfile, "mel profile", UnknownProfile)


class UnknownProfile(DuetError, ValueError):
    """A mel profile that is neither a preset nor a YAML file declaring one."""


def _hz_to_mel(hz: np.ndarray | float, htk: bool) -> np.ndarray:
    hz = np.asanyarray(hz, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    f_sp = 200.0 / 3
    mels = hz / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(
        hz >= min_log_hz,
        min_log_mel + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep,
        mels,
    )


def _mel_to_hz(mels: np.ndarray, htk: bool) -> np.ndarray:
    mels = np.asanyarray(mels, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), freqs)


@functools.cache
def mel_filterbank(profile: MelProfile) -> np.ndarray:
    """``[n_fft // 2 + 1, n_mels]`` float32 weights, as ``librosa.filters.mel(...).T``."""
    fmax = profile.fmax if profile.fmax is not None else profile.sample_rate / 2.0
    fftfreqs = np.fft.rfftfreq(profile.n_fft, d=1.0 / profile.sample_rate)
    mel_points = np.linspace(
        _hz_to_mel(profile.fmin, profile.htk), _hz_to_mel(fmax, profile.htk), profile.n_mels + 2
    )
    mel_f = _mel_to_hz(mel_points, profile.htk)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.empty((profile.n_mels, len(fftfreqs)), dtype=np.float32)
    for i in range(profile.n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    if profile.norm == "slaney":
        enorm = 2.0 / (mel_f[2 : profile.n_mels + 2] - mel_f[: profile.n_mels])
        weights *= enorm[:, np.newaxis].astype(np.float32)
    weights.setflags(write=False)
    return np.ascontiguousarray(weights.T)


@functools.cache
def _window(n_fft: int, win_length: int | None) -> np.ndarray:
    win_length = win_length or n_fft
    n = np.arange(win_length)
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)).astype(np.float32)
    left = (n_fft - win_length) // 2
    padded = np.zeros(n_fft, dtype=np.float32)
    padded[left : left + win_length] = window
    padded.setflags(write=False)
    return padded


def num_frames(num_samples: int, hop_length: int) -> int:
    """Frames of a centred STFT: one per hop, the first centred on sample 0."""
    return 1 + num_samples // hop_length


def power_spectrogram(
    samples: np.ndarray, n_fft: int, hop_length: int, win_length: int | None
) -> np.ndarray:
    """``|STFT|²`` as ``[frames, n_fft // 2 + 1]`` float32, centred frames, computed in blocks."""
    y = np.ascontiguousarray(samples, dtype=np.float32)
    pad = n_fft // 2
    padded = np.pad(y, (pad, pad))
    n = num_frames(len(y), hop_length)
    frames = np.lib.stride_tricks.as_strided(
        padded,
        shape=(n, n_fft),
        strides=(padded.strides[0] * hop_length, padded.strides[0]),
        writeable=False,
    )
    window = _window(n_fft, win_length)
    out = np.empty((n, n_fft // 2 + 1), dtype=np.float32)
    for start in range(0, n, _BLOCK_FRAMES):
        spectrum = scipy.fft.rfft(frames[start : start + _BLOCK_FRAMES] * window, axis=1)
        block = out[start : start + len(spectrum)]
        np.multiply(spectrum.real, spectrum.real, out=block)
        block += spectrum.imag * spectrum.imag
    return out


def _stft_key(profile: MelProfile) -> tuple:
    return (profile.sample_rate, profile.n_fft, profile.hop_length, profile.win_length)


def apply_log(mel: np.ndarray, profile: MelProfile) -> np.ndarray:
    """The profile's compression: dB (ref 1, no top_db clip), log10(1 + scale·x) or ln(amin + x)."""
    if profile.log == "db":
        return 10.0 * np.log10(np.maximum(mel, np.float32(profile.amin)))
    if profile.log == "log10_1p":
        return np.log10(np.float32(1.0) + np.float32(profile.log_scale) * mel)
    return np.log(mel + np.float32(profile.amin))


def log_mels(samples: np.ndarray, profiles: list[MelProfile]) -> dict[str, np.ndarray]:
    """Log-mel features ``[frames, n_mels]`` float32 per profile name, for mono ``samples`` at
    the profiles' common sample rate; profiles with the same framing share one STFT."""
    out: dict[str, np.ndarray] = {}
    spectra: dict[tuple, np.ndarray] = {}
    for profile in profiles:
        key = _stft_key(profile)
        if key not in spectra:
            spectra[key] = power_spectrogram(
                samples, profile.n_fft, profile.hop_length, profile.win_length
            )
        power = spectra[key] @ mel_filterbank(profile)
        out[profile.name] = apply_log(power, profile).astype(np.float32, copy=False)
    return out


def log_mel(samples: np.ndarray, profile: MelProfile) -> np.ndarray:
    """Log-mel features ``[frames, n_mels]`` float32 of mono ``samples`` at the profile's rate."""
    return log_mels(samples, [profile])[profile.name]
