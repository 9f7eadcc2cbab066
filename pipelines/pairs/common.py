"""The pairing strategies by name and what each needs: the names every stage of the pairs job
(and the command line) shares, with no heavy imports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NotRequired, TypedDict

from duet.errors import DuetError

FORMAT_VERSION = 2
"""2: ``epoch-NNNN`` folders (1: ``epoch=NNNN``, a hive partition whose type clashed with the
``epoch`` column) and parts stored under tagged names listed in the run's ``_SUCCESS``."""


@dataclass(frozen=True)
class Crop:
    """A crop strategy: windows of ``length`` units (samples or frames) of ``stream``."""

    stream: str
    length: int
    gap: int = 0


CROPS = {
    "self": Crop("wav-22050", 59_049),  # CLMR / PEMR / SimCLR: two independent crops
    "self_mel": Crop("mel-alonso", 256),  # the same on mel frames (Alonso's 256-frame patches)
    "adjacent": Crop("mel-choi", 188, gap=31),  # Choi: 3 s, then the next 3 s after 0.5 s
    "random_segment": Crop("mel-choi", 188),  # Choi: another non-overlapping 3 s segment
    "cpc": Crop("mel-choi", 752),  # Choi's CPC: one 12 s window
}
PAIRED = ("playlist_co", "playlist_tco", "artist_co")
LOOKUP = ("w2v", "cf", "multimodal")
STRATEGIES = PAIRED + LOOKUP + tuple(CROPS)
ONE_PAIR_PER_TRACK = ("playlist_co", "playlist_tco")


class EpochStats(TypedDict):
    eligible: int  # the catalogue: tracks with audio, else the playlists' tracks (in the split)
    rows: int
    tracks_covered: int
    coverage: float
    unpaired: int
    pairs: NotRequired[int]  # paired strategies
    too_short: NotRequired[int]  # crop strategies


class PairsInputError(DuetError, ValueError):
    """A strategy's input table is missing or unusable, or gives no pairs."""


def check_strategies(strategies: tuple[str, ...]) -> None:
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise PairsInputError(f"unknown strategies {unknown}; expected some of {list(STRATEGIES)}")
