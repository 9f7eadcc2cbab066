"""Word2Vec tables with gensim: playlists as sentences of track ids (Alonso-Jiménez et al.'s
"Playlist W2V"), and songs' genre lists as sentences of genres (Ferraro et al.'s genre modality).

Whole-sentence context, as in the papers: ``window`` at least the longest sentence and
``shrink_windows=False`` (gensim otherwise draws each word's window from 1..window).

gensim cuts sentences beyond 10 000 tokens without a word. A longer playlist is therefore
split here into consecutive pieces of at most 10 000 tracks, each its own context, and the
split is counted in the sidecar (``long_playlists``): nothing is cut silently.

``deterministic``: one worker and a fixed seed give bit-identical vectors across runs (gensim
seeds its initial vectors from ``seed`` and its sampling from per-worker generators; it uses no
string hashing in training). Several workers race on shared vectors (Hogwild), so the default
multi-worker mode is faster but not reproducible bit for bit.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from duet import layout, schemas, storage
from duet.pipelines.tables import common

MAX_SENTENCE = 10_000
"""gensim's MAX_WORDS_IN_BATCH: longer sentences are truncated by gensim, so we split them."""


class Sentences:
    """A restartable iterable of sentences (lists of str) for gensim.

    Tokens are dictionary-encoded once, so each sentence is built on the fly from shared
    strings instead of holding every playlist as Python lists for all epochs.
    """

    def __init__(self, lists: pa.ListArray, max_len: int = MAX_SENTENCE):
        flat = pc.list_flatten(lists)
        encoded = pc.dictionary_encode(flat)
        self.words: list[str] = encoded.dictionary.to_pylist()
        self.codes = encoded.indices.to_numpy()
        lengths = pc.list_value_length(lists).fill_null(0).to_numpy()
        self.bounds = np.concatenate([[0], np.cumsum(lengths)])
        self.max_len = max_len
        self.longest = int(min(lengths.max(initial=0), max_len))
        self.split_sentences = int((lengths > max_len).sum())
        self.count = int(sum(-(-n // max_len) for n in lengths[lengths > 0]))

    def __iter__(self):
        words, codes, step = self.words, self.codes, self.max_len
        for start, end in zip(self.bounds[:-1].tolist(), self.bounds[1:].tolist(), strict=True):
            for a in range(start, end, step):
                yield [words[c] for c in codes[a : min(end, a + step)].tolist()]


def train_word2vec(sentences: Sentences, params: dict, workers: int):
    """A gensim CBOW/skip-gram model over ``sentences``; window = whole sentence by default."""
    from gensim.models import Word2Vec

    window = params["window"] or max(sentences.longest, 1)
    model = Word2Vec(
        vector_size=params["vector_size"], window=window, alpha=params["alpha"],
        min_count=params["min_count"], sg=int(params["sg"]), negative=params["negative"],
        sample=params["sample"], shrink_windows=False, seed=params["seed"], workers=workers,
        epochs=params["epochs"],
    )  # fmt: skip
    logging.getLogger("gensim").setLevel(logging.WARNING)
    model.build_vocab(corpus_iterable=sentences)
    if not len(model.wv):
        raise common.EmbeddingInputError(
            f"no word occurs at least min_count={params['min_count']} times"
        )
    model.train(corpus_iterable=sentences, total_examples=model.corpus_count, epochs=model.epochs)
    return model, window


def _workers(deterministic: bool, workers: int | None) -> int:
    return 1 if deterministic else (workers or os.cpu_count() or 1)


@dataclass(frozen=True, kw_only=True)
class Word2VecOptions:
    """gensim parameters shared by both jobs, and the optional split to train on."""

    vector_size: int = 128
    window: int | None = None
    alpha: float = 0.02
    epochs: int = 20
    min_count: int = 1
    negative: int = 5
    sample: float = 1e-3
    sg: bool = False
    seed: int = 0
    workers: int | None = None
    deterministic: bool = False
    splits: str | None = None
    split: tuple[str, ...] = ()

    def params(self) -> dict:
        """The training parameters recorded in the sidecar (no paths)."""
        skip = {"playlists", "track_meta", "output", "splits", "workers"}
        return {k: v for k, v in asdict(self).items() if k not in skip}


@dataclass(frozen=True)
class W2VJob(Word2VecOptions):
    """Playlist Word2Vec. Defaults are the paper's (CBOW, alpha 0.02, 20 epochs, min_count 1)
    but ``vector_size`` 128, which is ours."""

    playlists: str
    output: str

    @property
    def folder(self) -> str:
        return layout.at(self.output, layout.embedding_folder("w2v"))

    def run(self) -> dict:
        started = time.monotonic()
        keep = common.split_tracks(self.splits, self.split) if self.split else None
        lists, counts = common.read_playlists(self.playlists, keep)
        sentences = Sentences(lists)
        params = self.params()
        workers = _workers(self.deterministic, self.workers)
        model, window = train_word2vec(sentences, params, workers)
        counts.update(vectors=len(model.wv), sentences=sentences.count,
                      long_playlists=sentences.split_sentences)  # fmt: skip
        table = common.vectors_table(model.wv.index_to_key, model.wv.vectors)
        body = common.sidecar(
            "embeddings", "word2vec", {**params, "window": window, "shrink_windows": False, "workers": workers,
                         "max_sentence": MAX_SENTENCE},
            self.seed, {"playlists": self.playlists, "splits": self.splits if self.split else None},
            counts, common.library_versions("gensim"), started,
        )  # fmt: skip
        common.publish_tables(self.folder, {layout.VECTORS: (table, schemas.embeddings_schema(
            self.vector_size))}, body)  # fmt: skip
        return body


def track_genre_ids(
    genres: pa.ListArray, index: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Per track, up to GENRE_SLOTS genre indices in listed order (duplicates once), padded with
    GENRE_PAD; genres missing from ``index`` are left out and counted."""
    slots = schemas.GENRE_SLOTS
    ids = np.full((len(genres), slots), schemas.GENRE_PAD, dtype=np.int32)
    n = np.zeros(len(genres), dtype=np.int8)
    counts = {"unknown_genres": 0, "tracks_over_slots": 0, "tracks_without_genres": 0}
    for row, values in enumerate(genres.to_pylist()):
        seen = list(dict.fromkeys(g for g in values or () if g))
        known = [index[g] for g in seen if g in index]
        counts["unknown_genres"] += len(seen) - len(known)
        counts["tracks_over_slots"] += len(known) > slots
        counts["tracks_without_genres"] += not known
        known = known[:slots]
        ids[row, : len(known)] = known
        n[row] = len(known)
    return ids, n, counts


@dataclass(frozen=True)
class GenreW2VJob(Word2VecOptions):
    """Genre Word2Vec over each song's genre list (window = whole list, min_count 1).

    ``vector_size`` 200 is Ferraro et al. (IEEE SPL 2021, proposed method: the genre modality): each
    genre of a song becomes a 200-dimensional Word2Vec vector learnt from the songs' genre
    lists; the other defaults are gensim's, as the paper names no other setting."""

    track_meta: str
    output: str
    vector_size: int = field(default=200, kw_only=True)
    alpha: float = field(default=0.025, kw_only=True)
    epochs: int = field(default=5, kw_only=True)

    @property
    def folder(self) -> str:
        return layout.at(self.output, layout.embedding_folder(layout.GENRE_W2V))

    def run(self) -> dict:
        started = time.monotonic()
        if not storage.exists(self.track_meta):
            raise common.EmbeddingInputError(
                f"track meta table {self.track_meta} does not exist (run duet playlists)"
            )
        meta = schemas.read_table(self.track_meta, schemas.TRACK_META)
        meta = meta.take(pc.sort_indices(meta.column("track_id")))
        genres = meta.column("genres").combine_chunks()
        training = genres
        if self.split:
            train = common.split_tracks(self.splits, self.split)
            keep = pc.is_in(meta.column("track_id").combine_chunks(), value_set=train)
            training = genres.filter(keep)
        training = training.filter(pc.greater(pc.list_value_length(training), 0))
        if not len(training):
            raise common.EmbeddingInputError(f"{self.track_meta}: no track has a genre")
        sentences = Sentences(training)
        params = self.params()
        workers = _workers(self.deterministic, self.workers)
        model, window = train_word2vec(sentences, params, workers)
        vectors = common.vectors_table(model.wv.index_to_key, model.wv.vectors)
        index = {g: i for i, g in enumerate(vectors.column("id").to_pylist())}
        vectors = vectors.add_column(0, "index", pa.array(range(len(index)), pa.int32()))
        ids, n, counts = track_genre_ids(genres, index)
        tracks = pa.table({
            "track_id": meta.column("track_id"),
            "genre_ids": pa.FixedSizeListArray.from_arrays(pa.array(ids.reshape(-1)), schemas.GENRE_SLOTS),
            "n_genres": pa.array(n),
        })  # fmt: skip
        solo = pc.list_value_length(training).to_numpy() == 1
        with_context = set(pc.list_flatten(training.filter(pa.array(~solo))).to_pylist())
        counts.update(genres=len(index), tracks=len(meta), sentences=sentences.count,
                      genres_without_context=len(set(index) - with_context))  # fmt: skip
        body = common.sidecar(
            "embeddings", "word2vec-genres", {**params, "window": window, "shrink_windows": False,
                                "workers": workers, "slots": schemas.GENRE_SLOTS,
                                "pad": schemas.GENRE_PAD},
            self.seed, {"track_meta": self.track_meta, "splits": self.splits if self.split else None},
            counts, common.library_versions("gensim"), started,
        )  # fmt: skip
        common.publish_tables(self.folder, {
            layout.GENRES: (vectors, schemas.genre_vectors_schema(self.vector_size)),
            layout.TRACK_GENRES: (tracks, schemas.TRACK_GENRES),
        }, body)  # fmt: skip
        return body
