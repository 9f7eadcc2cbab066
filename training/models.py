"""Encoders and projectors of the published systems (parameters in ../shared/SPEC.md)."""

from __future__ import annotations

import math

import torch
from torch import nn


class SampleCNN(nn.Module):
    """CLMR's SampleCNN: a strided conv then 9 blocks of conv1d(3) + BN + ReLU + max-pool(3) on
    59 049-sample waveforms (3¹⁰), down to one 512-d frame."""

    CHANNELS = (128, 128, 128, 256, 256, 256, 256, 256, 256, 512)

    def __init__(self):
        super().__init__()
        layers = [nn.Conv1d(1, 128, 3, stride=3), nn.BatchNorm1d(128), nn.ReLU()]
        for c_in, c_out in zip(self.CHANNELS[:-1], self.CHANNELS[1:], strict=True):
            layers += [nn.Conv1d(c_in, c_out, 3, padding=1), nn.BatchNorm1d(c_out), nn.ReLU(),
                       nn.MaxPool1d(3)]  # fmt: skip
        self.net = nn.Sequential(*layers)
        self.dim = 512

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.net(wave.unsqueeze(1)).mean(dim=-1)


def _conv_block(c_in: int, c_out: int, pool) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.MaxPool2d(pool),
    ]


class VGGish(nn.Module):
    """VGGish-style 2D CNN on mel patches ``[batch, frames, bands]`` with a 4×4 first pooling
    (Alonso-Jiménez et al.); global mean pooling → 512-d."""

    def __init__(self, channels=(64, 128, 256, 512)):
        super().__init__()
        layers, c_in = [], 1
        for i, c in enumerate(channels):
            layers += _conv_block(c_in, c, 4 if i == 0 else 2)
            c_in = c
        self.net = nn.Sequential(*layers)
        self.dim = channels[-1]

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.net(mel.unsqueeze(1)).mean(dim=(2, 3))


class Bottleneck(nn.Module):
    def __init__(self, c_in: int, width: int, stride: int):
        super().__init__()
        c_out = width * 4
        self.body = nn.Sequential(
            nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(), nn.Conv2d(width, c_out, 1, bias=False), nn.BatchNorm2d(c_out),
        )  # fmt: skip
        self.skip = (nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class ResNet50(nn.Module):
    """ResNet-50 on one-channel mel patches; global max + mean pooling → 4 096-d (Alonso)."""

    def __init__(self):
        super().__init__()
        layers = [nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64),
                  nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1)]  # fmt: skip
        c_in = 64
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for b in range(blocks):
                layers.append(Bottleneck(c_in, width, stride if b == 0 else 1))
                c_in = width * 4
        self.net = nn.Sequential(*layers)
        self.dim = 2 * c_in

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.net(mel.unsqueeze(1))
        return torch.cat([x.amax(dim=(2, 3)), x.mean(dim=(2, 3))], dim=1)


def projector(dim_in: int, hidden: int, dim_out: int) -> nn.Module:
    """One hidden layer with ReLU (CLMR 512→512→128; Alonso →128→128)."""
    return nn.Sequential(nn.Linear(dim_in, hidden), nn.ReLU(), nn.Linear(hidden, dim_out))


BACKBONES = {"samplecnn": SampleCNN, "vggish": VGGish, "resnet50": ResNet50}


class ChoiCNN(nn.Module):
    """Choi et al.'s encoder: 5 conv layers (5×5, BN, ReLU, max-pool 2) on ``[batch, frames,
    bands]``; ``levels`` returns each layer's globally mean-pooled features."""

    CHANNELS = (64, 128, 128, 256, 256)

    def __init__(self):
        super().__init__()
        blocks, c_in = [], 1
        for c in self.CHANNELS:
            blocks.append(nn.Sequential(nn.Conv2d(c_in, c, 5, padding=2), nn.BatchNorm2d(c),
                                        nn.ReLU(), nn.MaxPool2d(2)))  # fmt: skip
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.dims = self.CHANNELS
        self.dim = self.CHANNELS[-1]

    def levels(self, mel: torch.Tensor) -> list[torch.Tensor]:
        x, out = mel.unsqueeze(1), []
        for block in self.blocks:
            x = block(x)
            out.append(x.mean(dim=(2, 3)))
        return out

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.levels(mel)[-1]


BACKBONES["choi"] = ChoiCNN


class FerraroAudio(nn.Module):
    """Ferraro et al.'s audio encoder: 7 conv blocks (3×3, BN, ReLU, pool) on 48-band mel crops
    of 256 frames, then a feed-forward block."""

    def __init__(self, dim: int = 256, bands: int = 48, dropout: float = 0.5):
        super().__init__()
        blocks, c_in = [], 1
        for c in (32, 64, 64, 128, 128, 256, 256):
            pool = (2, 2 if bands > 1 else 1)
            bands //= pool[1]
            blocks += [
                nn.Conv2d(c_in, c, 3, padding=1),
                nn.BatchNorm2d(c),
                nn.ReLU(),
                nn.MaxPool2d(pool),
            ]
            c_in = c
        self.net = nn.Sequential(*blocks)
        self.ff = nn.Sequential(
            nn.Linear(c_in, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim)
        )
        self.dim = dim

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.ff(self.net(mel.unsqueeze(1)).mean(dim=(2, 3)))


class GenreEncoder(nn.Module):
    """Up to 10 genre Word2Vec vectors → 4-head self-attention, FF + residual, LayerNorm,
    summed over the track's genres (zero rows are padding)."""

    def __init__(self, genre_dim: int, dim: int = 256, heads: int = 4):
        super().__init__()
        self.inp = nn.Linear(genre_dim, dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, genres: torch.Tensor) -> torch.Tensor:
        pad = genres.abs().sum(dim=-1) == 0
        x = self.inp(genres)
        attended, _ = self.attention(x, x, x, key_padding_mask=pad)
        x = self.norm(x + attended)
        x = self.norm(x + self.ff(x))
        return (x * (~pad).unsqueeze(-1)).sum(dim=1)


class CFEncoder(nn.Module):
    """CF factors (301 = 300 + bias) → FF → ReLU → dropout 0.5 → FF → LayerNorm."""

    def __init__(self, cf_dim: int, dim: int = 256, dropout: float = 0.5):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cf_dim, dim), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(dim, dim), nn.LayerNorm(dim))  # fmt: skip

    def forward(self, cf: torch.Tensor) -> torch.Tensor:
        return self.net(cf)


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """The Transformer's fixed sin/cos position table ``[length, dim]``."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate[: dim // 2])
    return table


class _Block(nn.Module):
    """Pre-norm Transformer layer that can hand back its head-averaged attention map."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(4 * dim, dim))  # fmt: skip
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, weights: bool = False):
        h = self.norm1(x)
        attended, attention = self.attention(h, h, h, need_weights=weights,
                                             average_attn_weights=True)  # fmt: skip
        x = x + self.dropout(attended)
        return x + self.dropout(self.ff(self.norm2(x))), attention


class FrameTransformer(nn.Module):
    """PEMR's mask generator: log-mel frames → [CLS] + frames with sinusoidal positions →
    Transformer layers. Trained by masked-frame reconstruction (``reconstruct``); its last
    layer's [CLS]-to-frame attention, averaged over heads, scores each frame (``scores``)."""

    def __init__(self, bands: int, dim: int = 192, layers: int = 3, heads: int = 3,
                 dropout: float = 0.1):  # fmt: skip
        super().__init__()
        self.inp = nn.Linear(bands, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList(_Block(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, bands)
        nn.init.normal_(self.cls, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)

    def _run(self, frames: torch.Tensor, masked: torch.Tensor | None, weights: bool):
        x = self.inp(frames)
        if masked is not None:
            x = torch.where(masked[..., None], self.mask_token.to(x.dtype), x)
        x = x + sinusoidal_positions(x.shape[1], x.shape[2]).to(x.device, x.dtype)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)
        attention = None
        for i, block in enumerate(self.blocks):
            x, attention = block(x, weights and i == len(self.blocks) - 1)
        return self.norm(x), attention

    def reconstruct(self, frames: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """Predicted frames ``[batch, frames, bands]`` with ``masked`` frames hidden."""
        hidden, _ = self._run(frames, masked, weights=False)
        return self.out(hidden[:, 1:])

    def scores(self, frames: torch.Tensor) -> torch.Tensor:
        """[CLS]-to-frame attention of the last layer, averaged over heads: ``[batch, frames]``."""
        _, attention = self._run(frames, None, weights=True)
        return attention[:, 0, 1:]


class FCN4(nn.Module):
    """FCN-4 (Choi et al. 2016) on ``[batch, frames, bands]``: four 3×3 conv blocks with BN,
    ReLU and max-pooling, global max pooling → 512-d (PEMR's encoder)."""

    CHANNELS = (64, 128, 256, 512)
    POOLS = ((4, 2), (4, 2), (4, 4), (2, 4))  # (frames, bands)

    def __init__(self):
        super().__init__()
        layers, c_in = [], 1
        for c, pool in zip(self.CHANNELS, self.POOLS, strict=True):
            layers += _conv_block(c_in, c, pool)
            c_in = c
        self.net = nn.Sequential(*layers)
        self.dim = self.CHANNELS[-1]

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.net(mel.unsqueeze(1)).amax(dim=(2, 3))
