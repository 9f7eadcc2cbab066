"""Log-mel on the training device with a profile's exact parameters (window, filterbank, log),
so features computed after waveform augmentation match the shards' mel (tested)."""

from __future__ import annotations

import torch
from torch import nn

from duet.pipelines.audio.mel import MelProfile, _window, mel_filterbank, presets


class LogMel(nn.Module):
    """``[batch, samples]`` → ``[batch, frames, n_mels]``, centred frames, zero padding."""

    window: torch.Tensor
    filterbank: torch.Tensor

    def __init__(self, profile: MelProfile | str):
        super().__init__()
        self.profile = presets()[profile] if isinstance(profile, str) else profile
        p = self.profile
        self.register_buffer(
            "window", torch.from_numpy(_window(p.n_fft, p.win_length).copy()), persistent=False
        )
        self.register_buffer(
            "filterbank", torch.from_numpy(mel_filterbank(p).copy()), persistent=False
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        p = self.profile
        spec = torch.stft(wave.float(), p.n_fft, p.hop_length, window=self.window, center=True,
                          pad_mode="constant", return_complex=True)  # fmt: skip
        power = (spec.real**2 + spec.imag**2).transpose(1, 2) @ self.filterbank
        if p.log == "db":
            return 10.0 * torch.log10(power.clamp_min(p.amin))
        if p.log == "log10_1p":
            return torch.log10(1.0 + p.log_scale * power)
        return torch.log(power + p.amin)
