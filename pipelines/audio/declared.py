"""What an audio file declares about its own length, read from its headers without decoding.

A decoder that stops early (or runs long) returns a plausible array and exit status 0, so its
result is only trusted once it agrees with the file. This module reads, per container:

- **MP3**: frame headers and Xing/Info/VBRI headers, joined streams (``duet.pipelines.audio.mpeg``).
- **Ogg** (Vorbis, Opus, FLAC): every page header; each beginning-of-stream page after data
  starts a new chained stream; a stream declares its last granule position (Opus: minus
  pre-skip, at 48 kHz).
- **FLAC**: STREAMINFO's total sample count, the last frame's header (what the frames hold),
  and further ``fLaC`` streams joined after the first.
- **WAV** (RIFF): the ``data`` chunk's size against the bytes present.
- **MP4/M4A**: the audio track's edit list (or media header) duration; a box that runs past
  the end of the file means the file is cut.

Sources: RFC 3533 (Ogg), RFC 7845 (Ogg Opus), the Vorbis I spec §4.2.2; the FLAC format
(RFC 9639 §8.2, §9.1); ISO/IEC 14496-12 (``mvhd``, ``mdhd``, ``hdlr``, ``elst``).
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass

from duet.pipelines.audio.mpeg import mp3_length, skip_id3

__all__ = ["Declared", "declared_length"]


@dataclass(frozen=True)
class Declared:
    """A file's declared length, in seconds of audio at each stream's own rate.

    ``seconds`` is what the headers declare (summed over joined streams); ``found`` what its
    bytes hold by the frame/page walk; ``frame`` one codec frame (the tolerance unit);
    ``streams`` how many streams are joined byte-wise (1 for a plain file); ``cut`` why the
    file is known to end early (None if it is not); ``detail`` names container and streams.
    """

    container: str
    seconds: float
    found: float
    frame: float
    streams: int = 1
    cut: str | None = None
    detail: str = ""

    @property
    def tolerance(self) -> float:
        """One frame, plus two per extra joined stream (its header frame and encoder delay,
        which decoders that do not restart at a join decode as audio)."""
        return self.frame * (1 + 2 * (self.streams - 1)) + 1e-6

    def agrees(self, seconds: float) -> bool:
        """Whether a decode of ``seconds`` is what both the headers and the bytes declare."""
        tol = self.tolerance
        return abs(seconds - self.seconds) <= tol and abs(seconds - self.found) <= tol


def declared_length(path: str) -> Declared | None:
    """The declared length of the audio file at ``path``; None when its container is not
    one of those above or its headers cannot be read. Never raises for bad input."""
    try:
        size = os.path.getsize(path)
        if size < 16:
            return None
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _probe(buf)
    except (OSError, ValueError, IndexError, struct.error, ZeroDivisionError, OverflowError):
        return None


def _probe(buf) -> Declared | None:
    start = skip_id3(buf, 0)
    head = buf[start : start + 12]
    if head[:4] == b"OggS":
        return _ogg(buf)
    if head[:4] == b"fLaC":
        return _flac(buf, start)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return _wav(buf)
    if head[4:8] == b"ftyp":
        return _mp4(buf)
    mp3 = mp3_length(buf, start)
    return None if mp3 is None else Declared("mp3", *mp3)


# --- Ogg -----------------------------------------------------------------------------------


def _ogg_codec(packet: bytes) -> tuple[str, int, int, float] | None:
    """(codec, rate, pre-skip, frame seconds) from a logical stream's first packet."""
    if packet[:7] == b"\x01vorbis":
        rate = struct.unpack_from("<I", packet, 12)[0]
        return "Vorbis", rate, 0, (1 << (packet[28] >> 4)) / rate
    if packet[:8] == b"OpusHead":
        return "Opus", 48000, struct.unpack_from("<H", packet, 10)[0], 0.02
    if packet[:5] == b"\x7fFLAC" and packet[9:13] == b"fLaC":
        info = packet[17:35]
        rate = (info[10] << 12) | (info[11] << 4) | (info[12] >> 4)
        return "FLAC", rate, 0, struct.unpack_from(">H", info, 2)[0] / rate
    return None


def _ogg(buf) -> Declared | None:
    n, pos = len(buf), 0
    links: list[dict] = []  # one per chained stream: its audio serial, codec, last granule
    in_headers, cut = False, None
    while pos + 27 <= n:
        if buf[pos : pos + 4] != b"OggS":
            pos = buf.find(b"OggS", pos + 1)
            if pos < 0:
                break
            continue
        flags = buf[pos + 5]
        granule, serial = struct.unpack_from("<qI", buf, pos + 6)
        nsegs = buf[pos + 26]
        body = pos + 27 + nsegs
        end = body + sum(buf[pos + 27 : body])
        if end > n:
            cut = "cut short: its last Ogg page is incomplete"
            break
        if flags & 0x02:  # beginning of a logical stream
            if not in_headers:
                links.append({"serial": None})
                in_headers = True
            codec = _ogg_codec(buf[body : min(end, body + 64)])
            if codec is not None and links[-1]["serial"] is None:
                links[-1].update(serial=serial, codec=codec, granule=0)
        else:
            in_headers = False
            link = links[-1] if links else None
            if link and serial == link["serial"] and granule >= 0:
                link["granule"] = granule
        pos = end
    audio = [link for link in links if link["serial"] is not None]
    if not audio or len(audio) != len(links):
        return None
    seconds = sum(max(0, a["granule"] - a["codec"][2]) / a["codec"][1] for a in audio)
    detail = "Ogg, " + " + ".join(f"{a['codec'][0]} {a['codec'][1]} Hz" for a in audio)
    if len(audio) > 1:
        detail += f" ({len(audio)} chained streams)"
    frame = max(a["codec"][3] for a in audio)
    return Declared("ogg", seconds, seconds, frame, len(audio), cut, detail)


# --- FLAC ----------------------------------------------------------------------------------


def _streaminfo(buf, at: int) -> tuple[int, int, int, int, int]:
    """(rate, total samples, min block size, max block size, max frame bytes) of the
    STREAMINFO block at ``at``."""
    info = buf[at : at + 34]
    rate = (info[10] << 12) | (info[11] << 4) | (info[12] >> 4)
    total = int.from_bytes(info[13:18], "big") & ((1 << 36) - 1)
    min_block, max_block = struct.unpack_from(">HH", info, 0)
    return rate, total, min_block, max_block, int.from_bytes(info[7:10], "big")


_FLAC_BLOCKS = {
    1: 192,
    **{c: 576 << (c - 2) for c in range(2, 6)},
    **{c: 256 << (c - 8) for c in range(8, 16)},
}


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _flac_frame_end(buf, lo: int, hi: int, min_block: int) -> int | None:
    """Samples up to the end of the last frame whose header (CRC-checked) lies in [lo, hi)."""
    pos = hi
    while True:
        pos = buf.rfind(b"\xff", lo, pos)
        if pos < 0:
            return None
        b = buf[pos : pos + 16]
        if len(b) >= 6 and b[1] in (0xF8, 0xF9) and b[2] >> 4 != 0 and b[3] & 1 == 0:
            first, count = b[4], 0
            while count < 7 and first & (0x80 >> count):
                count += 1
            width = 1 if count == 0 else count
            if count != 1 and 4 + width < len(b):
                number = first & (0x7F >> count) if count else first
                for extra in b[5 : 4 + width]:
                    number = (number << 6) | (extra & 0x3F)
                at, code = 4 + width, b[2] >> 4
                block = _FLAC_BLOCKS.get(code)
                if code in (6, 7):
                    size = 1 if code == 6 else 2
                    block = int.from_bytes(b[at : at + size], "big") + 1
                    at += size
                at += {12: 1, 13: 2, 14: 2}.get(b[2] & 0x0F, 0)
                if block and at < len(b) and _crc8(b[:at]) == b[at]:
                    first_sample = number if b[1] == 0xF9 else number * min_block
                    return first_sample + block
        if pos <= lo:
            return None


def _flac(buf, start: int) -> Declared | None:
    n = len(buf)
    heads, cursor = [start], start + 4
    while (nxt := buf.find(b"fLaC", cursor)) >= 0:
        if (
            buf[nxt + 4 : nxt + 5] in (b"\x00", b"\x80")
            and buf[nxt + 5 : nxt + 8] == b"\x00\x00\x22"
        ):
            heads.append(nxt)
        cursor = nxt + 4
    declared = found = 0.0
    frame = 0.0
    for i, head in enumerate(heads):
        rate, total, min_block, max_block, max_frame = _streaminfo(buf, head + 8)
        if not rate:
            return None
        end = heads[i + 1] if i + 1 < len(heads) else n
        window = max(1 << 16, 2 * max_frame)
        samples = _flac_frame_end(buf, max(head, end - window), end, min_block)
        if not total or samples is None:
            return None
        declared += total / rate
        found += samples / rate
        frame = max(frame, max_block / rate)
    detail = "FLAC" + (f" ({len(heads)} FLAC streams joined)" if len(heads) > 1 else "")
    return Declared("flac", declared, found, frame, len(heads), None, detail)


# --- WAV -----------------------------------------------------------------------------------

_PCM_TAGS = (1, 3, 6, 7, 0xFFFE)


def _wav(buf) -> Declared | None:
    n, pos = len(buf), 12
    fmt = None
    while pos + 8 <= n:
        chunk, size = buf[pos : pos + 4], struct.unpack_from("<I", buf, pos + 4)[0]
        if chunk == b"fmt ":
            tag, _, rate, _, align = struct.unpack_from("<HHIIH", buf, pos + 8)
            fmt = (tag, rate, align)
        elif chunk == b"data":
            if fmt is None or fmt[0] not in _PCM_TAGS or not fmt[1] or not fmt[2]:
                return None
            present = n - pos - 8
            rate, align = fmt[1], fmt[2]
            if size in (0, 0xFFFFFFFF):  # written by a stream that never came back to fix it
                size = present
            declared, found = size // align / rate, min(size, present) // align / rate
            cut = None
            if size > present:
                cut = f"cut short: its data chunk declares {size} bytes, {present} are present"
            return Declared("wav", declared, found, 1 / rate, 1, cut, f"WAV, {rate} Hz")
        pos += 8 + size + (size & 1)
    return None


# --- MP4 / M4A -----------------------------------------------------------------------------


def _boxes(buf, pos: int, end: int):
    """(type, payload start, box end) of the boxes in [pos, end); end may lie past the file."""
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", buf, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header:
            return
        yield kind, pos + header, pos + size
        pos += size


def _child(buf, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for k, body, stop in _boxes(buf, start, end):
        if k == kind:
            return body, stop
    return None


def _mp4(buf) -> Declared | None:
    n = len(buf)
    moov, cut = None, None
    for kind, body, stop in _boxes(buf, 0, n):
        if stop > n:
            cut = (
                f"cut short: its '{kind.decode('latin-1')}' box runs {stop - n} bytes past the end"
            )
        if kind == b"moov":
            moov = (body, min(stop, n))
    if moov is None:
        return None
    mvhd = _child(buf, *moov, b"mvhd")
    if mvhd is None:
        return None
    movie_scale = struct.unpack_from(">I", buf, mvhd[0] + (20 if buf[mvhd[0]] == 1 else 12))[0]
    for kind, body, stop in _boxes(buf, *moov):
        if kind != b"trak":
            continue
        mdia = _child(buf, body, stop, b"mdia")
        if mdia is None:
            continue
        hdlr = _child(buf, *mdia, b"hdlr")
        if not hdlr or buf[hdlr[0] + 8 : hdlr[0] + 12] != b"soun":
            continue
        mdhd = _child(buf, *mdia, b"mdhd")
        if mdhd is None:
            return None
        v1 = buf[mdhd[0]] == 1
        scale, duration = struct.unpack_from(
            ">IQ" if v1 else ">II", buf, mdhd[0] + (20 if v1 else 12)
        )
        seconds = duration / scale
        edts = _child(buf, body, stop, b"edts")
        elst = edts and _child(buf, *edts, b"elst")
        if elst and movie_scale:
            version, count = buf[elst[0]], struct.unpack_from(">I", buf, elst[0] + 4)[0]
            layout, width = (">qq", 20) if version == 1 else (">ii", 12)
            total = 0
            for i in range(min(count, 1024)):
                span, media_time = struct.unpack_from(layout, buf, elst[0] + 8 + i * width)
                if media_time != -1:
                    total += span
            seconds = total / movie_scale if total else seconds
        if not seconds:
            return None
        return Declared("mp4", seconds, seconds, 2048 / scale, 1, cut, f"MP4, {scale} Hz")
    return None
