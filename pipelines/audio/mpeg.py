"""MPEG audio (MP3) streams: frame headers, Xing/Info/VBRI headers, joined streams.

Reads what an MP3 file declares about its length without decoding it: every frame header
(MPEG-1/2/2.5, layers I–III), ID3v2 tags wherever they are, and each Xing/Info/VBRI header
with its LAME encoder delay and padding. Each such header starts a new stream (a file joined
byte-wise from several MP3s has several), as does a change of rate or channels; a stream
declares the frame count of its header (or, untagged, the frames present). A file whose first
header's byte count ends exactly at the end of the file is one whole stream and is not walked.

Sources: ISO/IEC 11172-3 §2.4.2.3 and 13818-3 (frame headers); the Xing/LAME tag layout
(gabriel.mp3-tech.org/mp3infotag.html) as ffmpeg's ``libavformat/mp3dec.c`` reads it.
"""

from __future__ import annotations

import struct
from typing import NamedTuple


class MpegLength(NamedTuple):
    """Seconds declared and found, one frame in seconds, streams, why cut, description."""

    seconds: float
    found: float
    frame: float
    streams: int
    cut: str | None
    detail: str


def _syncsafe(data: bytes) -> int:
    return (data[0] << 21) | (data[1] << 14) | (data[2] << 7) | data[3]


def skip_id3(buf, pos: int) -> int:
    """Position after the ID3v2 tags starting at ``pos`` (itself if there are none)."""
    while buf[pos : pos + 3] == b"ID3" and len(buf) >= pos + 10:
        footer = 10 if buf[pos + 5] & 0x10 else 0
        pos += 10 + footer + _syncsafe(buf[pos + 6 : pos + 10])
    return pos


_BITRATES = {  # kbit/s by (MPEG-1?, layer), index 1..14
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_BITRATES[(False, 3)] = _BITRATES[(False, 2)]
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _frame_table() -> dict[int, tuple[int, int, int, int, int]]:
    """(header byte 1 << 8 | byte 2) → (length without padding, padding unit, samples per
    frame, sample rate, Xing offset for stereo) for every valid MPEG audio frame header."""
    table = {}
    for b1 in range(0xE0, 0x100):
        version, layer = (b1 >> 3) & 3, 4 - ((b1 >> 1) & 3)
        if version == 1 or layer == 4:
            continue
        mpeg1 = version == 3
        for b2 in range(256):
            index, rate_index = b2 >> 4, (b2 >> 2) & 3
            if index in (0, 15) or rate_index == 3:
                continue
            bitrate, rate = _BITRATES[(mpeg1, layer)][index - 1] * 1000, _RATES[version][rate_index]
            if layer == 1:
                spf, length, unit = 384, 12 * bitrate // rate * 4, 4
            else:
                spf = 1152 if (layer == 2 or mpeg1) else 576
                length, unit = spf // 8 * bitrate // rate, 1
            side = 32 if mpeg1 else 17
            table[(b1 << 8) | b2] = (length, unit * ((b2 >> 1) & 1), spf, rate, side)
    return table


_FRAMES = _frame_table()


def _mp3_header(buf, pos: int):
    if pos + 4 > len(buf) or buf[pos] != 0xFF:
        return None
    return _FRAMES.get((buf[pos + 1] << 8) | buf[pos + 2])


def _info_tag(buf, pos: int, entry, mono: bool) -> tuple[int | None, int | None, int, int] | None:
    """(frames, bytes, encoder delay, padding) of a Xing/Info/VBRI header frame, else None."""
    side = entry[4] if not mono else (17 if entry[4] == 32 else 9)
    at = pos + 4 + side
    tag = buf[at : at + 4]
    if tag in (b"Xing", b"Info"):
        flags = struct.unpack_from(">I", buf, at + 4)[0]
        cursor, frames, nbytes = at + 8, None, None
        if flags & 1:
            frames = struct.unpack_from(">I", buf, cursor)[0]
            cursor += 4
        if flags & 2:
            nbytes = struct.unpack_from(">I", buf, cursor)[0]
            cursor += 4
        cursor += (100 if flags & 4 else 0) + (4 if flags & 8 else 0)
        delay = padding = 0
        if buf[cursor : cursor + 4] in (b"LAME", b"Lavf", b"Lavc"):
            b = buf[cursor + 21 : cursor + 24]
            delay, padding = (b[0] << 4) | (b[1] >> 4), ((b[1] & 0x0F) << 8) | b[2]
        return frames, nbytes, delay, padding
    if buf[pos + 36 : pos + 40] == b"VBRI":
        delay = struct.unpack_from(">H", buf, pos + 42)[0]
        nbytes, frames = struct.unpack_from(">II", buf, pos + 46)
        return frames, nbytes, delay, 0
    return None


class _Stream:
    """One MP3 stream of a file: frames found, and what its info header declares."""

    def __init__(self, rate: int, channels: int, tag=None):
        self.rate, self.channels, self.tag = rate, channels, tag
        self.frames, self.seconds, self.spf = 0, 0.0, 1152

    def lengths(self) -> tuple[float, float]:
        """(declared, found) seconds: a tag's frame count minus delay and padding."""
        if self.tag is None or self.tag[0] is None:
            return self.seconds, self.seconds
        frames, _, delay, padding = self.tag
        trim = (delay + padding) / self.rate
        declared = max(frames, self.frames) * self.spf / self.rate - trim
        return declared, self.seconds - (trim if self.frames >= frames else delay / self.rate)

    def describe(self) -> str:
        return f"{self.rate} Hz {'mono' if self.channels == 1 else 'stereo'}"


def _tail_tags(buf) -> int:
    """Bytes of ID3v1 / APEv2 tags at the end of the file."""
    end = len(buf)
    if end >= 128 and buf[end - 128 : end - 125] == b"TAG":
        end -= 128
    if end >= 32 and buf[end - 32 : end - 24] == b"APETAGEX":
        end -= 32 + struct.unpack_from("<I", buf, end - 20)[0]
    return len(buf) - end


def mp3_length(buf, start: int) -> MpegLength | None:
    """The length an MP3 held in ``buf`` (bytes or mmap) declares from ``start`` (after its
    leading ID3v2 tags); None when no frame header starts there."""
    entry = _mp3_header(buf, start)
    if entry is None:
        return None
    mono = buf[start + 3] >> 6 == 3
    tag = _info_tag(buf, start, entry, mono)
    if tag is not None and tag[0] is not None and tag[1] is not None:
        stream_end = len(buf) - _tail_tags(buf)
        if start + tag[1] == stream_end:  # the header's byte count ends exactly at the end
            one = _Stream(entry[3], 1 if mono else 2, tag)
            one.spf, one.frames = entry[2], tag[0]
            one.seconds = tag[0] * entry[2] / entry[3]
            declared, found = one.lengths()
            frame = entry[2] / entry[3]
            return MpegLength(declared, found, frame, 1, None, "MP3, " + one.describe())
    return _mp3_walk(buf, start)


_RESYNC_BYTES = 1 << 16


def _resync(buf, pos: int) -> int | None:
    """The next position within 64 kB of ``pos`` where two consecutive frame headers agree."""
    limit = pos + _RESYNC_BYTES
    while True:
        pos = buf.find(b"\xff", pos, limit)
        if pos < 0:
            return None
        entry = _mp3_header(buf, pos)
        if entry is not None:
            nxt = pos + entry[0] + entry[1]
            other = _mp3_header(buf, nxt)
            if other is not None and other[2:4] == entry[2:4]:
                return pos
        pos += 1


def _mp3_walk(buf, pos: int) -> MpegLength | None:
    n, unpack = len(buf), struct.unpack_from
    streams: list[_Stream] = []
    longest_frame, cut = 0.0, None
    while pos + 4 <= n:
        word = unpack(">I", buf, pos)[0]
        entry = _FRAMES.get((word >> 8) & 0xFFFF) if word >> 24 == 0xFF else None
        if entry is None:
            if buf[pos : pos + 3] == b"ID3":
                pos = skip_id3(buf, pos)
                continue
            if n - pos <= _tail_tags(buf):
                break
            resync = _resync(buf, pos + 1)
            if resync is None:
                break
            pos = resync
            continue
        length = entry[0] + entry[1]
        channels = 1 if (word >> 6) & 3 == 3 else 2
        if pos + length > n:
            cut = f"its last frame is incomplete ({n - pos} of {length} bytes)"
            break
        current = streams[-1] if streams else None
        tag = _info_tag(buf, pos, entry, channels == 1)
        if (
            tag is not None
            or current is None
            or (current.rate, current.channels)
            != (
                entry[3],
                channels,
            )
        ):
            streams.append(_Stream(entry[3], channels, tag))
            streams[-1].spf = entry[2]
            if tag is not None:
                pos += length
                continue
            current = streams[-1]
        current.frames += 1
        current.seconds += entry[2] / entry[3]
        longest_frame = max(longest_frame, entry[2] / entry[3])
        pos += length
    if not streams or not longest_frame:
        return None
    declared = found = 0.0
    for s in streams:
        d, f = s.lengths()
        declared, found = declared + d, found + f
        if s.tag is not None and s.tag[0] is not None and s.frames < s.tag[0] and cut is None:
            cut = f"its header declares {s.tag[0]} frames, {s.frames} are present"
    detail = "MP3, " + " + ".join(s.describe() for s in streams)
    if len(streams) > 1:
        headers = sum(s.tag is not None for s in streams)
        detail += f" ({len(streams)} streams joined, {headers} with their own header)"
    cut = cut and f"cut short: {cut}"
    return MpegLength(declared, found, longest_frame, len(streams), cut, detail)
