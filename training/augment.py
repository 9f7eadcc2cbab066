"""Batch augmentations on the training device, drawn from a seeded ``torch.Generator`` so a
resumed run repeats them exactly.

CLMR's chain (Spijkervet & Burgoyne; probabilities from its public code), each applied per
example with probability p, in this order: polarity inversion (0.8), white noise at 80 dB SNR
(0.01), gain −6…0 dB (0.3), low-pass 2.2–4 kHz or high-pass 200–1 200 Hz by coin flip (0.8),
delay 200–500 ms in 50 ms steps mixed at 0.5 (0.3), pitch shift ±5 semitones (0.6), reverb
with room size / reverberation / damping in U[0, 100] (0.6). Our own implementations (FFT
filters, a phase vocoder, a synthetic decaying-noise impulse response), because
torch-audiomentations has no batch reverb and its pitch shift runs per example on the CPU.
"""

from __future__ import annotations

import math

import torch


def _where(mask: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    return torch.where(mask[:, None], new, old)


def _uniform(n: int, lo: float, hi: float, g: torch.Generator, device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, device=device)


def _coin(n: int, p: float, g: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) < p


def filter_fft(x: torch.Tensor, cutoff: torch.Tensor, sr: int, highpass: torch.Tensor,
               order: int = 4) -> torch.Tensor:  # fmt: skip
    """Butterworth-magnitude low/high-pass per example, applied in the frequency domain."""
    spec = torch.fft.rfft(x, dim=1)
    freqs = torch.fft.rfftfreq(x.shape[1], 1 / sr).to(x.device)[None, :]
    ratio = (freqs / cutoff[:, None]).clamp_min(1e-6) ** (2 * order)
    low = 1 / torch.sqrt(1 + ratio)
    gain = torch.where(highpass[:, None], torch.sqrt(1 - low**2), low)
    return torch.fft.irfft(spec * gain, n=x.shape[1], dim=1)


def time_stretch(x: torch.Tensor, rate: float, n_fft: int = 1024, hop: int = 256) -> torch.Tensor:
    """Phase-vocoder time stretch of a batch by ``rate`` (> 1 shortens)."""
    window = torch.hann_window(n_fft, device=x.device)
    spec = torch.stft(x, n_fft, hop, window=window, return_complex=True)
    steps = torch.arange(0, spec.shape[-1], rate, device=x.device)
    phase_advance = torch.linspace(0, math.pi * hop, spec.shape[1], device=x.device)[:, None]
    spec = torch.nn.functional.pad(spec, (0, 2))
    idx = steps.long()
    alpha = (steps - idx)[None, None, :]
    a, b = spec[..., idx], spec[..., idx + 1]
    magnitude = (1 - alpha) * a.abs() + alpha * b.abs()
    delta = b.angle() - a.angle() - phase_advance
    delta = delta - 2 * math.pi * torch.round(delta / (2 * math.pi))
    phase = torch.cumsum(torch.cat([a[..., :1].angle(), (delta + phase_advance)[..., :-1]], -1), -1)
    out = torch.polar(magnitude, phase)
    return torch.istft(out, n_fft, hop, window=window, length=int(round(x.shape[1] / rate)))


def pitch_shift(x: torch.Tensor, semitones: int) -> torch.Tensor:
    """Shift by ``semitones`` keeping the length: stretch by 2^(-n/12), then resample back."""
    if semitones == 0:
        return x
    factor = 2 ** (semitones / 12)
    stretched = time_stretch(x, 1 / factor)
    return torch.nn.functional.interpolate(stretched[:, None], size=x.shape[1], mode="linear",
                                           align_corners=False)[:, 0]  # fmt: skip


def reverb(x: torch.Tensor, sr: int, room: torch.Tensor, reverberance: torch.Tensor,
           damping: torch.Tensor, g: torch.Generator) -> torch.Tensor:  # fmt: skip
    """Convolution with a decaying-noise impulse response: decay time from room size and
    reverberance (0–100), high frequencies damped by ``damping`` (0–100)."""
    n = x.shape[0]
    length = int(0.5 * sr)
    t = torch.arange(length, device=x.device)[None, :] / sr
    rt60 = 0.05 + 0.9 * (room / 100)[:, None] * (0.3 + 0.7 * (reverberance / 100)[:, None])
    ir = torch.randn(n, length, generator=g, device=x.device) * torch.exp(-6.9 * t / rt60)
    ir = filter_fft(
        ir, 8000 - 7000 * damping / 100, sr, torch.zeros(n, dtype=torch.bool, device=x.device)
    )
    ir[:, 0] = 1.0
    ir = ir / ir.abs().sum(dim=1, keepdim=True) * 4
    size = x.shape[1] + length
    wet = torch.fft.irfft(torch.fft.rfft(x, size) * torch.fft.rfft(ir, size), size)[:, : x.shape[1]]
    return 0.5 * x + 0.5 * wet


def clmr_chain(x: torch.Tensor, sr: int, g: torch.Generator, pitch: bool = True) -> torch.Tensor:
    """CLMR's augmentation chain on a batch of waveforms ``[batch, samples]``."""
    n, dev = x.shape[0], x.device
    x = _where(_coin(n, 0.8, g, dev), -x, x)
    noise = (
        torch.randn(x.shape, generator=g, device=dev) * x.pow(2).mean(1, keepdim=True).sqrt() * 1e-4
    )
    x = _where(_coin(n, 0.01, g, dev), x + noise, x)
    gain = 10 ** (_uniform(n, -6, 0, g, dev) / 20)
    x = _where(_coin(n, 0.3, g, dev), x * gain[:, None], x)
    highpass = _coin(n, 0.5, g, dev)
    cutoff = torch.where(highpass, _uniform(n, 200, 1200, g, dev), _uniform(n, 2200, 4000, g, dev))
    x = _where(_coin(n, 0.8, g, dev), filter_fft(x, cutoff, sr, highpass), x)
    steps = torch.randint(0, 7, (n,), generator=g, device=dev)  # 200..500 ms in 50 ms steps
    delayed = torch.stack(
        [torch.roll(x[i], int((0.2 + 0.05 * s) * sr)) for i, s in enumerate(steps.tolist())]
    )
    x = _where(_coin(n, 0.3, g, dev), x + 0.5 * delayed, x)
    if pitch:
        shift = torch.randint(-5, 6, (n,), generator=g, device=dev)
        do = _coin(n, 0.6, g, dev)
        for semitones in shift[do].unique().tolist():
            rows = do & (shift == semitones)
            x[rows] = pitch_shift(x[rows], int(semitones))
    room, reverberance, damping = (_uniform(n, 0, 100, g, dev) for _ in range(3))
    x = _where(_coin(n, 0.6, g, dev), reverb(x, sr, room, reverberance, damping, g), x)
    return x


def simclr_mix(patches: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Alonso's SimCLR baseline view: each patch mixed with a random other patch of the batch
    at a gain drawn from Beta(5, 2): ``g·x + (1 − g)·x_other``."""
    n = patches.shape[0]
    gain = _beta_5_2(torch.rand(n, generator=g)).to(patches.device)  # the generator decides
    other = torch.randint(0, n, (n,), generator=g).to(patches.device)
    shape = (n,) + (1,) * (patches.dim() - 1)
    return gain.view(shape) * patches + (1 - gain.view(shape)) * patches[other]


def _beta_5_2(u: torch.Tensor) -> torch.Tensor:
    """Inverse CDF of Beta(5, 2) by bisection (its CDF is 6x⁵ − 5x⁶)."""
    lo, hi = torch.zeros_like(u), torch.ones_like(u)
    for _ in range(40):
        mid = (lo + hi) / 2
        below = 6 * mid**5 - 5 * mid**6 < u
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return (lo + hi) / 2


def choi_chain(x: torch.Tensor, sr: int, g: torch.Generator) -> torch.Tensor:
    """Choi et al.'s self-augmentation of 16 kHz waveforms: pitch shift by one of
    {−2, −1, +1, +2} semitones, time stretch 0.8–1.2 (back to the input length), reverb (p 0.5),
    noise (p 0.5) and polarity inversion. The paper gives no probabilities for pitch, stretch and
    polarity: 0.5 each *(ours)*; noise at 30 dB SNR *(ours)*."""
    n, dev = x.shape[0], x.device
    shift = torch.tensor([-2, -1, 1, 2], device=dev)[
        torch.randint(0, 4, (n,), generator=g, device=dev)
    ]
    do = _coin(n, 0.5, g, dev)
    for semitones in shift[do].unique().tolist():
        rows = do & (shift == semitones)
        x[rows] = pitch_shift(x[rows], int(semitones))
    rate = float(_uniform(1, 0.8, 1.2, g, dev))
    stretch = _coin(n, 0.5, g, dev)
    if stretch.any():
        y = time_stretch(x[stretch], rate)
        y = (
            y[:, : x.shape[1]]
            if y.shape[1] >= x.shape[1]
            else torch.nn.functional.pad(y, (0, x.shape[1] - y.shape[1]))
        )
        x[stretch] = y
    room, reverberance, damping = (_uniform(n, 0, 100, g, dev) for _ in range(3))
    x = _where(_coin(n, 0.5, g, dev), reverb(x, sr, room, reverberance, damping, g), x)
    noise = (
        torch.randn(x.shape, generator=g, device=dev)
        * x.pow(2).mean(1, keepdim=True).sqrt()
        * 10 ** (-30 / 20)
    )
    x = _where(_coin(n, 0.5, g, dev), x + noise, x)
    return _where(_coin(n, 0.5, g, dev), -x, x)
