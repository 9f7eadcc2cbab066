"""duet.datasets: every published table of a root opens in one call and reads exactly what its
marker lists; a table that is not published is refused naming the command that makes it; pair
manifests read as one table with an integer epoch in pyarrow, pandas and DuckDB as well."""

import os
import shutil

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from duet import datasets, layout, publish, readers


def run_stats(root: str) -> dict:
    run = datasets.list_pair_runs(root)[-1]
    return publish.read_success(layout.at(root, layout.pair_run(run)))


def test_each_table_of_a_root_opens_in_one_call_with_the_rows_its_marker_counts(dataset):
    playlists = layout.read_summary(layout.at(dataset, layout.PLAYLISTS), dict)
    assert datasets.open_playlists(dataset).num_rows == playlists["counts"]["playlists"] > 0
    assert datasets.open_track_meta(dataset).num_rows == playlists["counts"]["tracks_with_meta"]
    index = datasets.open_index(dataset)
    assert index.num_rows == len(set(zip(index["track_id"].to_pylist(),
                                         index["stream"].to_pylist(), strict=True))) > 0  # fmt: skip
    assert datasets.open_failures(dataset).num_rows >= 1  # the catalogue's broken files
    topk = datasets.open_topk(dataset)
    assert topk.num_rows > 0 and set(topk["track_id"].to_pylist()) <= set(
        index["track_id"].to_pylist()) | set(pa.concat_arrays(
            datasets.open_playlists(dataset)["track_ids"].chunks).flatten().to_pylist())  # fmt: skip
    vectors = datasets.open_vectors(dataset, "w2v")
    assert vectors.num_rows > 0 and vectors.schema.field("vector").type.list_size > 0


def test_open_pairs_reads_one_epoch_or_every_epoch_of_the_latest_run(dataset):
    stats = run_stats(dataset)["stats"]["playlist_co"]
    one = datasets.open_pairs(dataset, "playlist_co", epoch=1)
    assert one.num_rows == stats["0001"]["rows"] > 0 and set(one["epoch"].to_pylist()) == {1}
    every = datasets.open_pairs(dataset, "playlist_co")
    assert every.num_rows == sum(s["rows"] for s in stats.values())
    assert sorted(set(every["epoch"].to_pylist())) == [0, 1]


def test_a_strategy_or_epoch_the_run_does_not_have_is_refused(dataset):
    with pytest.raises(publish.NotPublished, match="no cf manifest.*duet pairs --strategies cf"):
        datasets.open_pairs(dataset, "cf")
    with pytest.raises(publish.NotPublished, match="epoch 7"):
        datasets.open_pairs(dataset, "playlist_co", epoch=7)


def test_a_table_that_is_not_published_names_the_command_that_makes_it(dataset, tmp_path):
    with pytest.raises(publish.NotPublished, match="duet splits"):
        datasets.open_splits(dataset)
    copy = str(tmp_path / "copy")
    shutil.copytree(layout.at(dataset, layout.PLAYLISTS), layout.at(copy, layout.PLAYLISTS))
    os.remove(layout.at(copy, layout.marker(layout.PLAYLISTS)))  # a run that never finished
    with pytest.raises(publish.NotPublished, match="duet playlists"):
        datasets.open_playlists(copy)


def test_a_strategy_folder_and_a_whole_run_read_as_one_table_in_pyarrow_pandas_and_duckdb(
    dataset,
):
    run = datasets.list_pair_runs(dataset)[-1]
    folder = layout.at(dataset, layout.pair_run(run))
    strategy = os.path.join(folder, "playlist_co")
    expected = datasets.open_pairs(dataset, "playlist_co").num_rows
    table = pq.read_table(strategy)
    assert table.num_rows == expected and pa.types.is_integer(table.schema.field("epoch").type)
    frame = pd.read_parquet(strategy)
    assert len(frame) == expected and pd.api.types.is_integer_dtype(frame["epoch"])
    epochs = duckdb.sql(f"SELECT epoch, count(*) FROM read_parquet('{strategy}/**/*.parquet') "
                        "GROUP BY epoch ORDER BY epoch").fetchall()  # fmt: skip
    assert [e for e, _ in epochs] == [0, 1] and sum(n for _, n in epochs) == expected
    whole = pq.read_table(folder)
    assert whole.num_rows == sum(s["rows"] for by in run_stats(dataset)["stats"].values()
                                 for s in by.values())  # fmt: skip


def test_track_vectors_are_keyed_by_track_id_and_older_id_keyed_tables_still_read(
    dataset, tmp_path
):
    vectors = datasets.open_vectors(dataset, "w2v")
    assert vectors.column_names == ["track_id", "vector"]
    older = tmp_path / "older.parquet"
    pq.write_table(vectors.rename_columns(["id", "vector"]), older)
    again = readers.read_embeddings(str(older), "duet embed", users_own=True)
    assert again.column("track_id").equals(vectors.column("track_id"))
