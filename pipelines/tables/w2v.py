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
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from duet import layout, publish, readers, schemas
from duet.pipelines.tables import common

MAX_SENTENCE = 10_000
"""gensim's MAX_WORDS_IN_BATCH: longer sentences are truncated by gensim, so we split them."""


class Sentences:
    """Sentences of string tokens for gensim, dictionary-encoded once: as a corpus file of
    token numbers (gensim's ``corpus_file`` mode, which trains on every core without the GIL)
    or as a restartable iterable of lists of str. Sentences longer than ``max_len`` are split
    into consecutive pieces of at most ``max_len`` tokens."""

    def __init__(self, lists: pa.ListArray, max_len: int = MAX_SENTENCE):
        encoded = pc.dictionary_encode(pc.list_flatten(lists))
        self.words: list[str] = encoded.dictionary.to_pylist()
        self.codes = encoded.indices.to_numpy(zero_copy_only=False)
        lengths = pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False)
        pieces = -(-lengths // max_len)
        first = np.repeat(np.concatenate([[0], np.cumsum(lengths)[:-1]]), pieces)
        within = np.arange(pieces.sum()) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        self.bounds = np.append(first + within * max_len, len(self.codes)).astype(np.int64)
        self.max_len = max_len
        self.longest = int(min(lengths.max(initial=0), max_len))
        self.split_sentences = int((lengths > max_len).sum())
        self.count = len(self.bounds) - 1
        self.total = len(self.codes)

    def __iter__(self):
        words, codes = self.words, self.codes
        for start, end in zip(self.bounds[:-1].tolist(), self.bounds[1:].tolist(), strict=True):
            yield [words[c] for c in codes[start:end].tolist()]

    def frequencies(self) -> dict[str, int]:
        """Token number (as gensim sees it in the corpus file) → occurrences, in first-seen
        order (gensim breaks frequency ties by this order, as in iterable mode)."""
        counts = np.bincount(self.codes, minlength=len(self.words))
        return {str(i): int(c) for i, c in enumerate(counts.tolist())}

    def write_corpus(self, path: str) -> str:
        """One line per sentence, tokens as numbers separated by spaces (ids may hold spaces)."""
        tokens = pa.array(self.codes).cast(pa.large_string())
        lines = pc.binary_join(pa.LargeListArray.from_arrays(pa.array(self.bounds), tokens),
                               pa.scalar(" ", pa.large_string()))  # fmt: skip
        with open(path, "w", encoding="ascii") as f:
            for batch in range(0, len(lines), 100_000):
                f.write("\n".join(lines[batch : batch + 100_000].to_pylist()) + "\n")
        return path


class _Forward(logging.Handler):
    """A logging handler that passes every record to ``emit``."""

    def __init__(self, emit: Callable[[logging.LogRecord], None]):
        super().__init__(logging.INFO)
        self.forward = emit

    def emit(self, record: logging.LogRecord) -> None:
        self.forward(record)


class Progress:
    """A tqdm bar over training epochs (fractions of an epoch from gensim's progress log), with
    the rate and the ETA, on stderr."""

    def __init__(self, epochs: int, enabled: bool):
        from gensim.models.callbacks import CallbackAny2Vec

        self.bar = tqdm(total=epochs, unit="epoch", desc="word2vec", disable=not enabled,
                        dynamic_ncols=True, file=sys.stderr,
                        bar_format="{l_bar}{bar}| {n:.2f}/{total} epochs [{elapsed}<{remaining}]")  # fmt: skip
        bar = self.bar

        class _EpochEnd(CallbackAny2Vec):
            def on_epoch_end(self, model):
                bar.n = min(bar.total, int(bar.n) + 1)
                bar.refresh()

        self.callbacks = [_EpochEnd()] if enabled else []
        self.enabled = enabled

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        if str(record.msg).startswith("EPOCH %i - PROGRESS") and isinstance(args, tuple):
            epoch, percent = args[0], args[1]
            if isinstance(epoch, int) and isinstance(percent, (int, float)):
                self.bar.n = min(float(self.bar.total or 0), epoch + percent / 100)
                self.bar.refresh()

    def __enter__(self) -> Progress:
        if self.enabled:
            self.handler = _Forward(self.emit)
            self.logger = logging.getLogger("gensim.models.word2vec")
            self.saved = (self.logger.level, self.logger.propagate)
            self.logger.setLevel(logging.INFO)
            self.logger.propagate = False
            self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.logger.removeHandler(self.handler)
            self.logger.setLevel(self.saved[0])
            self.logger.propagate = self.saved[1]
        self.bar.close()


def _finite_after_each_epoch():
    """A gensim callback that stops a diverging fit at the epoch its vectors go non-finite."""
    from gensim.models.callbacks import CallbackAny2Vec

    class FiniteVectors(CallbackAny2Vec):
        def __init__(self) -> None:
            self.epoch = 0

        def on_epoch_end(self, model) -> None:
            self.epoch += 1
            if not np.isfinite(model.wv.vectors).all():
                raise common.Diverged(self.epoch, "vectors", "--alpha")

    return FiniteVectors()


def train_word2vec(sentences: Sentences, params: dict, workers: int, *, mode: str = "file",
                   progress: bool = False, callbacks: tuple = ()):  # fmt: skip
    """A gensim CBOW/skip-gram model over ``sentences``; window = whole sentence by default.

    ``mode`` "file" trains from a corpus file (gensim's ``corpus_file``: every worker reads its
    own stretch of the file, no GIL, ~2× faster on 2 cores and scaling with cores; README);
    "iterable" from the Python iterable (one producer thread feeds the workers). Returns
    (model, window, ids), ``ids[i]`` the token of row ``i`` of ``model.wv.vectors``.
    ``callbacks``: more gensim callbacks (e.g. epoch timers). Diverged (one line, nothing
    published) when the vectors go non-finite.
    """
    from gensim.models import Word2Vec

    window = params["window"] or max(sentences.longest, 1)
    model = Word2Vec(
        vector_size=params["vector_size"], window=window, alpha=params["alpha"],
        min_count=params["min_count"], sg=int(params["sg"]), negative=params["negative"],
        sample=params["sample"], shrink_windows=False, seed=params["seed"], workers=workers,
        epochs=params["epochs"],
    )  # fmt: skip
    logging.getLogger("gensim").setLevel(logging.WARNING)
    with Progress(params["epochs"], progress) as bar:
        if mode == "iterable":
            model.build_vocab(corpus_iterable=sentences)
            _check_vocab(model, params)
            model.train(corpus_iterable=sentences, total_examples=model.corpus_count,
                        epochs=model.epochs, callbacks=[*bar.callbacks, *callbacks, _finite_after_each_epoch()])  # fmt: skip
            return model, window, list(model.wv.index_to_key)
        with tempfile.TemporaryDirectory(prefix="duet-w2v-") as folder:
            corpus = sentences.write_corpus(os.path.join(folder, "corpus.txt"))
            model.build_vocab_from_freq(sentences.frequencies(), corpus_count=sentences.count)
            _check_vocab(model, params)
            model.train(corpus_file=corpus, total_examples=sentences.count,
                        total_words=sentences.total, epochs=model.epochs,
                        callbacks=[*bar.callbacks, *callbacks, _finite_after_each_epoch()])  # fmt: skip
    return model, window, [sentences.words[int(k)] for k in model.wv.index_to_key]


def _check_vocab(model, params: dict) -> None:
    if not len(model.wv):
        raise common.EmbeddingInputError(
            f"no word occurs at least min_count={params['min_count']} times"
        )


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
    progress: bool = False
    commit: publish.Commit = publish.Commit()

    def params(self) -> dict:
        """The training parameters recorded in the sidecar (no paths)."""
        skip = {"playlists", "track_meta", "output", "splits", "workers", "progress", "commit"}
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

    def check_inputs(self) -> None:
        common.require_inputs((self.playlists, common.PLAYLISTS_BY),
                              (self.splits if self.split else None, common.SPLITS_BY))  # fmt: skip

    def run(self) -> dict:
        started = time.monotonic()
        keep = common.split_tracks(self.splits, self.split) if self.split else None
        lists, counts = common.read_playlists(self.playlists, keep)
        sentences = Sentences(lists)
        params = self.params()
        workers = _workers(self.deterministic, self.workers)
        model, window, ids = train_word2vec(sentences, params, workers, progress=self.progress)
        counts.update(vectors=len(model.wv), sentences=sentences.count,
                      long_playlists=sentences.split_sentences)  # fmt: skip
        table = common.vectors_table(ids, model.wv.vectors)
        body = common.sidecar(
            "embeddings", "word2vec", {**params, "window": window, "shrink_windows": False, "workers": workers,
                         "max_sentence": MAX_SENTENCE},
            self.seed, {"playlists": self.playlists, "splits": self.splits if self.split else None},
            counts, common.library_versions("gensim"), started,
            dropped=dropped_tracks(counts["tracks_read"], len(sentences.words), len(model.wv)),
        )  # fmt: skip
        return common.publish_tables(
            self.folder,
            {layout.VECTORS: (table, schemas.embeddings_schema(self.vector_size))},
            body,
            measures={"vectors": "counts.vectors"},
            how=self.commit,
        )


def dropped_tracks(read: int, trained: int, vectors: int) -> dict[str, int]:
    """Tracks of the playlists left without a vector, by reason (every reason listed, 0 when
    none): ``outside_split`` (only in playlists or entries the split removed) and
    ``below_min_count`` (fewer occurrences than ``--min-count``); ``read`` = vectors + both."""
    return {"below_min_count": trained - vectors, "outside_split": read - trained}


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

    def check_inputs(self) -> None:
        common.require_inputs((self.track_meta, common.PLAYLISTS_BY),
                              (self.splits if self.split else None, common.SPLITS_BY))  # fmt: skip

    def run(self) -> dict:
        started = time.monotonic()
        meta = readers.read_input(self.track_meta, schemas.TRACK_META, common.PLAYLISTS_BY)
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
        model, window, ids = train_word2vec(sentences, params, workers, progress=self.progress)
        vectors = common.vectors_table(ids, model.wv.vectors, key="id")
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
        return common.publish_tables(self.folder, {
            layout.GENRES: (vectors, schemas.genre_vectors_schema(self.vector_size)),
            layout.TRACK_GENRES: (tracks, schemas.TRACK_GENRES),
        }, body, measures={"genres": "counts.genres", "tracks": "counts.tracks"}, how=self.commit)  # fmt: skip
