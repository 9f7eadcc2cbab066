"""The tables a pair run reads, located under a dataset root and loaded once per worker:
playlists and artist groups as CSR, top-K neighbours, embedding ids, track lengths per stream,
and which tracks are eligible (with audio, in the split)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from duet import layout, publish, readers, schemas
from duet.pipelines.pairs.common import PairsInputError

DEFAULTS = {
    "playlists": layout.PLAYLISTS,
    "topk": f"{layout.COOC['playlist']}/{layout.TOPK}",
    "track_meta": layout.TRACK_META,
    "w2v": layout.embedding("w2v"),
    "cf": layout.embedding(layout.cf_model("warp")),
    "genres": layout.embedding(layout.GENRE_W2V, layout.TRACK_GENRES),
    "splits": layout.SPLITS,
}
"""Each input table's place in a dataset root (``--playlists`` etc. point elsewhere)."""
MADE_BY = {
    "playlists": "duet playlists",
    "topk": "duet cooccurrence",
    "track_meta": "duet playlists",
    "w2v": "duet embeddings w2v",
    "cf": "duet embeddings cf",
    "genres": "duet embeddings genre-w2v",
    "splits": "duet splits",
}
"""The command that publishes each input table (named when one is not published)."""
SHARDS_BY = "duet shards"


@dataclass(frozen=True)
class Inputs:
    """Where each strategy's tables live (defaults: the dataset root's standard names)."""

    data: str
    playlists: str | None = None
    topk: str | None = None
    track_meta: str | None = None
    w2v: str | None = None
    cf: str | None = None
    genres: str | None = None
    splits: str | None = None

    def given(self, name: str) -> bool:
        """Whether the user named this table (``--playlists`` …): then it may be the user's
        own file, not only a table a duet job published."""
        return bool(getattr(self, name))

    def uri(self, name: str) -> str:
        given = getattr(self, name)
        if given:
            return given
        return layout.at(self.data, DEFAULTS[name])

    def needed(self, strategy: str, split: tuple[str, ...]) -> list[str]:
        need = {"playlist_co": ["playlists"], "playlist_tco": ["topk"],
                "artist_co": ["track_meta"], "w2v": ["w2v"], "cf": ["cf"],
                "multimodal": ["genres", "cf"]}.get(strategy, [])  # fmt: skip
        return need + (["splits"] if split and self.splits_table() else [])

    def splits_table(self) -> bool:
        """Whether ``--split`` reads a splits table (``--splits``, or the root's own from
        ``duet splits``) rather than the ``split`` column the shards manifest gave the index."""
        return bool(self.splits) or publish.read_success(self.uri("splits")) is not None


def require(uri: str, name: str, what: str, users_own: bool = False) -> None:
    """PairsInputError (one line) unless the input table ``name`` at ``uri`` is published (or,
    with ``users_own``, is the user's own file: :func:`duet.publish.input_uris`)."""
    try:
        if users_own:
            publish.input_uris(uri, MADE_BY[name])
        else:
            publish.locate(uri, MADE_BY[name])
    except publish.NotPublished as exc:
        raise PairsInputError(f"{what}: {exc}") from None


def read(inputs: Inputs, name: str, schema: pa.Schema, what: str) -> pa.Table:
    """An input table, read through its marker (see :func:`require`)."""
    uri, own = inputs.uri(name), inputs.given(name)
    require(uri, name, what, own)
    read_table = readers.read_input if own else readers.read_published
    return read_table(uri, schema, MADE_BY[name])


def encode_ids(values: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """(sorted distinct ids, index of each value into them) in one hashing pass: Arrow
    dictionary-encodes a chunked array against one shared dictionary, which we then sort."""
    encoded = pc.dictionary_encode(values)
    if not encoded.num_chunks:
        return pa.array([], pa.string()), np.zeros(0, np.int32)
    dictionary = encoded.chunk(0).dictionary
    order = pc.sort_indices(dictionary).to_numpy()
    rank = np.empty(len(order), np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in encoded.chunks])
    return dictionary.take(pa.array(order)), rank[codes]


def csr(lists: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(ids, indptr, indices) of a chunked list<string> column; MPD-scale lists hold more than
    2 GB of strings, so nothing is combined into one chunk."""
    ids, indices = encode_ids(pc.list_flatten(lists))
    lengths = pc.list_value_length(lists).fill_null(0).to_numpy()
    indptr = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return ids, indptr, indices


class Sources:
    """The tables of one run, loaded lazily once per worker and shared by its epochs."""

    def __init__(self, inputs: Inputs, split: tuple[str, ...]):
        self.inputs = inputs
        self.split = split
        self._lookup: dict[str, pa.Array] = {}

    @cached_property
    def audio(self) -> pa.Array | None:
        """Track ids with audio (any stream), or None when the root has no published index."""
        if publish.read_success(self.inputs.data) is None:
            return None
        return pc.unique(self.index.column("track_id"))

    @cached_property
    def index(self) -> pa.Table:
        """The published audio index of the dataset root."""
        return readers.read_published(layout.at(self.inputs.data, layout.INDEX),
                                      schemas.AUDIO_INDEX, SHARDS_BY)  # fmt: skip

    @cached_property
    def in_split(self) -> pa.Array | None:
        if not self.split:
            return None
        if not self.inputs.splits_table():
            return self.index_split()
        table = read(self.inputs, "splits", schemas.SPLITS, "--split needs the splits table")
        keep = pc.is_in(table.column("split"), value_set=pa.array(list(self.split)))
        return table.filter(keep).column("track_id").combine_chunks()

    def index_split(self) -> pa.Array:
        """Track ids of the split, from the ``split`` column the shards manifest carried into
        the audio index (no splits table needed)."""
        if publish.read_success(self.inputs.data) is None:
            raise PairsInputError(f"--split needs a splits table (duet splits) or a published "
                                  f"audio index with a split column: {self.inputs.data} has "
                                  "neither")  # fmt: skip
        index = self.index
        split = index.column("split")
        if not pc.sum(pc.is_valid(split)).as_py():
            raise PairsInputError(f"--split: {self.inputs.data} has no splits table and its "
                                  "tracks have no split (add a split column, train/val/test, "
                                  "to the shards manifest, or run duet splits)")  # fmt: skip
        keep = pc.is_in(split, value_set=pa.array(list(self.split)))
        return pc.unique(index.filter(keep).column("track_id"))

    def eligible(self, ids: pa.Array) -> np.ndarray:
        """Which of ``ids`` have audio (when an index exists) and are in the split."""
        mask = np.ones(len(ids), bool)
        for allowed in (self.audio, self.in_split):
            if allowed is not None:
                mask &= pc.is_in(ids, value_set=allowed).to_numpy(zero_copy_only=False)
        return mask

    @cached_property
    def catalogue(self) -> pa.Array | None:
        """The tracks every strategy's coverage is measured over, whatever the strategy can
        pair: those with audio when the root has an audio index, else every track of the
        playlists table; in the split. None when neither table is published."""
        ids = self.audio
        if ids is None:
            if (
                not self.inputs.given("playlists")
                and publish.read_success(self.inputs.uri("playlists")) is None
            ):
                return None
            table = read(self.inputs, "playlists", schemas.PLAYLISTS, "the catalogue's playlists")
            ids = pc.unique(pc.list_flatten(table.column("track_ids")))
        if self.in_split is not None:
            ids = ids.filter(pc.is_in(ids, value_set=self.in_split))
        return ids

    def catalogue_size(self, eligible: pa.Array) -> int:
        """Tracks in the catalogue, counting also any of ``eligible`` (distinct ids the strategy
        could pair) that it lacks: the denominator of coverage."""
        if self.catalogue is None:
            return len(eligible)
        outside = pc.sum(pc.invert(pc.is_in(eligible, value_set=self.catalogue))).as_py()
        return len(self.catalogue) + int(outside or 0)

    @cached_property
    def playlists(self):
        table = read(
            self.inputs, "playlists", schemas.PLAYLISTS, "playlist_co needs the playlists table"
        )
        return csr(table.column("track_ids"))

    @cached_property
    def topk(self):
        table = read(self.inputs, "topk", schemas.TOPK, "playlist_tco needs the top-K table")
        table = table.filter(pc.less(pc.field("rank"), 10))
        both = pa.chunked_array(
            table.column("track_id").chunks + table.column("neighbor_id").chunks, pa.string()
        )
        ids, codes = encode_ids(both)
        rows, cols = codes[: table.num_rows], codes[table.num_rows :]
        ranks = table.column("rank").to_numpy()
        neighbors = np.full((len(ids), 10), -1, np.int32)
        neighbors[rows, ranks] = cols
        return ids, neighbors

    @cached_property
    def artist_groups(self):
        meta = read(
            self.inputs, "track_meta", schemas.TRACK_META, "artist_co needs the track meta table"
        )
        artists = meta.column("artist_ids")
        owners = pa.chunked_array(
            [t.take(pc.list_parent_indices(a)) for t, a in
             zip(meta.column("track_id").chunks, artists.chunks, strict=True)], pa.string())  # fmt: skip
        artist_ids, groups = encode_ids(pc.list_flatten(artists))
        ids, tracks = encode_ids(owners)
        keys = np.unique(
            groups.astype(np.int64) * max(len(ids), 1) + tracks
        )  # (artist, track) once
        indptr = np.searchsorted(keys // max(len(ids), 1), np.arange(len(artist_ids) + 1))
        indices = (keys % max(len(ids), 1)).astype(np.int32)
        return ids, indptr, indices

    def _vector_ids(self, name: str) -> pa.Array:
        uri, own = self.inputs.uri(name), self.inputs.given(name)
        require(uri, name, f"{name} needs its embedding table", own)
        vectors = readers.read_embeddings(uri, MADE_BY[name], users_own=own)
        return pc.unique(vectors.column("track_id"))

    def lookup(self, strategy: str) -> pa.Array:
        """Sorted ids of the tracks that have what ``strategy`` looks up."""
        if strategy not in self._lookup:
            ids = self._vector_ids("cf" if strategy == "multimodal" else strategy)
            if strategy == "multimodal":
                genres = read(self.inputs, "genres", schemas.TRACK_GENRES,
                              "multimodal needs the track genres table")  # fmt: skip
                with_genres = genres.filter(pc.greater(genres.column("n_genres"), 0))
                ids = ids.filter(
                    pc.is_in(ids, value_set=with_genres.column("track_id").combine_chunks())
                )
            self._lookup[strategy] = ids.sort()
        return self._lookup[strategy]

    def frames(self, stream: str) -> tuple[pa.Array, np.ndarray]:
        """Track ids and their length in ``stream`` units (samples or frames)."""
        if self.audio is None:
            raise PairsInputError(
                f"crop strategies need the audio index: {self.inputs.data} has none"
            )
        index = self.index
        rows = index.filter(pc.equal(index.column("stream"), stream))
        if not rows.num_rows:
            streams = sorted(set(index.column("stream").to_pylist()))
            raise PairsInputError(f"the audio index has no stream {stream!r}; it has {streams}")
        rows = rows.sort_by("track_id")
        units = "samples" if stream.startswith("wav-") else "frames"
        return rows.column("track_id").combine_chunks(), rows.column(units).to_numpy()
