"""Waveform and patch augmentations: what each does, and that a generator replays it."""

import math

import pytest
import torch

from duet.training import augment


def test_pitch_shift_moves_a_tone_by_the_semitones_and_keeps_the_length():
    sr = 22050
    t = torch.arange(sr) / sr
    tone = torch.sin(2 * math.pi * 440 * t)[None, :]
    shifted = augment.pitch_shift(tone, 12)
    assert shifted.shape == tone.shape
    spectrum = torch.fft.rfft(shifted[0, 2048:-2048]).abs()
    peak = float(spectrum.argmax()) * sr / (sr - 4096)
    assert abs(peak - 880) < 15


def test_clmr_chain_is_repeatable_from_its_generator():
    x = torch.randn(6, 59049) * 0.1
    one = augment.clmr_chain(x.clone(), 22050, torch.Generator().manual_seed(3))
    two = augment.clmr_chain(x.clone(), 22050, torch.Generator().manual_seed(3))
    three = augment.clmr_chain(x.clone(), 22050, torch.Generator().manual_seed(4))
    assert torch.equal(one, two) and not torch.equal(one, three) and torch.isfinite(one).all()


def test_simclr_mix_gains_follow_beta_5_2():
    u = torch.rand(20000, generator=torch.Generator().manual_seed(0))
    gains = augment._beta_5_2(u)
    assert float(gains.mean()) == pytest.approx(5 / 7, abs=0.01)
    patches = torch.randn(8, 4, 3)
    mixed = augment.simclr_mix(patches, torch.Generator().manual_seed(1))
    assert mixed.shape == patches.shape and not torch.equal(mixed, patches)
