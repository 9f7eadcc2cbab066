"""What imported features are: a declared profile, shipped as YAML (``melon`` built in).

duet never computes an imported profile; it records what the dataset says its arrays hold, so
that a reader knows the band count, frame rate and value scale, and so that imported values
never share a stream name with duet's own mel profiles (Essentia's dB and duet's dB differ in
reference and scale, so ``mel-melon`` and ``mel-ferraro`` are different streams).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass

from duet.errors import DuetError
from duet.pipelines.audio.mel import presets as computed_presets
from duet.presets import resolve as resolve_preset
from duet.presets import shipped as presets_of

_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,31}$")
LOGS = ("db", "log10_1p", "ln", None)
MEL_SCALES = ("slaney", "htk", None)


class ProfileError(DuetError):
    """A feature profile is unknown or declares something impossible."""


@dataclass(frozen=True)
class FeatureProfile:
    """One imported feature: stream ``mel-<name>``, arrays of ``n_mels`` bands at
    ``sample_rate / hop_length`` frames per second, values on the ``log`` scale as shipped
    (``db``, ``log10_1p``, ``ln``, or null for linear); ``n_fft``, ``fmin``, ``fmax`` and
    ``mel_scale`` are recorded when the dataset states them; ``source`` says where from."""

    name: str
    n_mels: int
    sample_rate: int
    hop_length: int
    log: str | None = "db"
    n_fft: int | None = None
    fmin: float | None = None
    fmax: float | None = None
    mel_scale: str | None = None
    source: str = ""

    def __post_init__(self):
        if not _NAME.match(self.name):
            raise ProfileError(f"feature profile name {self.name!r} must match {_NAME.pattern}")
        if self.name in computed_presets():
            raise ProfileError(
                f"feature profile name {self.name!r} is duet's own computed mel profile "
                f"(mel-{self.name}); name imported features after their dataset (e.g. melon)"
            )
        for field in ("n_mels", "sample_rate", "hop_length"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ProfileError(
                    f"feature profile {self.name}: {field} must be a positive integer"
                )
        if self.log not in LOGS:
            raise ProfileError(f"feature profile {self.name}: log must be one of {LOGS}")
        if self.mel_scale not in MEL_SCALES:
            raise ProfileError(
                f"feature profile {self.name}: mel_scale must be one of {MEL_SCALES}"
            )

    @property
    def stream(self) -> str:
        return f"mel-{self.name}"

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "imported": True}


REQUIRED = ("n_mels", "sample_rate", "hop_length")


@functools.cache
def presets() -> dict[str, FeatureProfile]:
    """The built-in profiles of datasets that ship features (``pipelines/features/profiles``)."""
    return presets_of("duet.pipelines.features", "profiles", FeatureProfile, "feature profile",
                      ProfileError, REQUIRED)  # fmt: skip


def resolve(spec: str) -> FeatureProfile:
    """A built-in profile name (``melon``) or the path of a YAML file declaring one.

    Raises:
        ProfileError: neither, or a file that does not declare a valid profile."""
    return resolve_preset(spec, presets(), FeatureProfile, "feature profile", ProfileError,
                          REQUIRED)  # fmt: skip
