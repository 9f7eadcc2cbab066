"""``duet report``: a dataset card from what a root has published, and only from that."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from duet import layout, publish, schemas
from duet.cli import main
from duet.pipelines.pairs.runs import latest_run, manifest, read_run
from duet.report import NothingPublished, make_report, render
from duet.report.sample import read_ids, read_sample
from tests.support.tables import republish, write_playlists

SECTIONS = ("audio", "features", "playlists", "cooccurrence", "embeddings", "splits", "pairs",
            "provenance")  # fmt: skip
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def dataset(catalog, published, tmp_path_factory) -> str:
    """A root made by the real jobs: shards (copied from the session's published run),
    playlists, co-occurrence (with counts, and by artist), Word2Vec, splits and genre vectors
    from Melon-shaped metadata, and a 3-epoch pair run of five strategies."""
    base = tmp_path_factory.mktemp("report")
    root, melon = str(base / "data"), str(base / "melon")
    shutil.copytree(published, root)
    playlists, meta = layout.at(root, layout.PLAYLISTS), layout.at(melon, layout.TRACK_META)
    for argv in (
        ["playlists", "--input", os.path.join(catalog, "mpd"), "--format", "mpd", "--output",
         root, "--tracks", root],
        ["cooccurrence", "--playlists", playlists, "--output", root, "--counts"],
        ["cooccurrence", "--playlists", playlists, "--output", root, "--group-by", "artist"],
        ["embeddings", "w2v", "--playlists", playlists, "--output", root, "--deterministic"],
        ["playlists", "--input", os.path.join(catalog, "melon"), "--format", "melon", "--output",
         melon, "--tracks", os.path.join(catalog, "tracks.parquet"), "--track-key",
         "melon_song_id", "--melon-genres", "both"],
        ["splits", "--track-meta", meta, "--output", root],
        ["embeddings", "genre-w2v", "--track-meta", meta, "--output", root],
        ["pairs", "--data", root, "--strategies", "playlist_co,playlist_tco,artist_co,w2v,self_mel",
         "--epochs", "0:3"],
    ):  # fmt: skip
        assert main(argv) == 0, argv
    return root


@pytest.fixture(scope="module")
def report(dataset, tmp_path_factory) -> dict:
    out = str(tmp_path_factory.mktemp("card"))
    result = make_report(dataset, out)
    with open(result["report.json"]) as f:
        body = json.load(f)
    with open(result["index.html"], encoding="utf-8") as f:
        page = f.read()
    return {"result": result, "json": body, "html": page, "out": out}


def test_a_complete_root_has_every_section_published(report):
    assert list(report["json"]["sections"]) == list(SECTIONS)
    assert {k: v["status"] for k, v in report["json"]["sections"].items()} == dict.fromkeys(
        SECTIONS, "ok"
    )


def test_counts_come_from_the_published_markers(report, dataset):
    sections = report["json"]["sections"]
    shards = publish.require_success(dataset)["counts"]
    playlists = publish.require_success(layout.at(dataset, layout.PLAYLISTS))["counts"]
    assert sections["audio"]["facts"]["indexed"]["value"] == shards["indexed"]
    assert sections["audio"]["facts"]["failed"]["value"] == shards["failed"]
    assert sections["playlists"]["facts"]["playlists"]["value"] == playlists["playlists"]
    assert sections["pairs"]["facts"]["run"]["value"] == latest_run(dataset)


def test_every_failure_is_listed_by_stage_and_reason(report, dataset):
    failures = schemas.read_table(layout.at(dataset, layout.FAILURES), schemas.FAILURES)
    rows = report["json"]["sections"]["audio"]["tables"]["failures"]["rows"]
    assert sum(r[2] for r in rows) == failures.num_rows > 0
    assert {r[0] for r in rows} == set(failures.column("stage").to_pylist())


def test_every_number_on_the_page_is_in_report_json(report):
    shown = set()

    def walk(value):
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        else:
            shown.add(render.number(value))

    walk(report["json"]["sections"])
    facts = re.findall(r'<div class="v">(.*?)</div>', report["html"])
    cells = re.findall(r'<td class="n">(.*?)</td>', report["html"])
    assert facts and cells
    for text in facts + cells:
        value = html.unescape(text)
        assert value in shown or value.rsplit(" ", 1)[0] in shown, value


def test_the_page_is_self_contained(report):
    page = report["html"]
    assert "<script" not in page and "<link" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) >= 15
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)


def test_plots_carry_the_numbers_they_show(report):
    section = report["json"]["sections"]["playlists"]
    hist = section["figures"]["lengths"]["data"]
    assert sum(hist["counts"]) == section["facts"]["playlists"]["value"]
    assert len(hist["bin_edges"]) == len(hist["counts"]) + 1


@pytest.mark.parametrize("strategy", ["playlist_co", "playlist_tco", "artist_co"])
def test_pair_repeats_match_a_direct_count(report, dataset, strategy):
    run, body = read_run(dataset)
    epochs = []
    for e in (0, 1):
        table = pq.read_table(layout.at(dataset, manifest(run, body, strategy, e)))
        pairs = zip(table.column("anchor_id").to_pylist(), table.column("positive_id").to_pylist(),
                    strict=True)  # fmt: skip
        epochs.append({frozenset(p) for p in pairs})
    expected = 100 * len(epochs[0] & epochs[1]) / len(epochs[1])
    panel = report["json"]["sections"]["pairs"]["figures"]["overlap"]["data"]["panels"][0]
    series = panel["series"][strategy]
    assert dict(zip(series["x"], series["y"], strict=True))[1] == pytest.approx(expected, abs=1e-3)


def test_pairs_are_shown_next_to_the_paper(report):
    rows = {r[0]: r for r in report["json"]["sections"]["pairs"]["tables"]["paper"]["rows"]}
    assert rows["playlist_co"][1] == 826_368 and rows["playlist_tco"][1] == 731_520
    assert rows["playlist_co"][4] > 0


def test_provenance_lists_every_published_marker(report, dataset):
    rows = report["json"]["sections"]["provenance"]["tables"]["markers"]["rows"]
    folders = {r[0] for r in rows}
    assert {"(root)", "playlists.parquet/", "cooc/", "cooc_artist/", "emb/w2v/",
            "emb/genre_w2v/", "splits.parquet/", f"pairs/{latest_run(dataset)}/"} <= folders  # fmt: skip
    states = {r[4] for r in report["json"]["sections"]["provenance"]["tables"]["inputs"]["rows"]}
    assert not any(s.startswith("changed") for s in states)
    assert "gone" not in states  # table files stored under the names their markers list


# ---------------------------------------------------------------- in a real browser

PROBE = """<script>addEventListener("load", () => {
  const images = [...document.images];
  document.body.dataset.probe = JSON.stringify({
    images: images.length,
    broken: images.filter(i => !i.complete || i.naturalWidth === 0).length,
    sections: [...document.querySelectorAll("section")].map(s => s.id),
    width: document.documentElement.scrollWidth});
});</script>"""


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def headless(browser: str, *args: str) -> str:
    flags = ["--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--disable-dev-shm-usage", "--window-size=1400,2400"]  # fmt: skip
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to sandbox as root
    result = subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
def test_the_page_renders_in_headless_chromium(report, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium; "
                    ".ci/run installs it when it runs as root)")  # fmt: skip
    page = os.path.join(report["out"], "index.html")
    shot = tmp_path / "report.png"
    headless(browser, f"--screenshot={shot}", f"file://{page}")
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.shape == (2400, 1400) and pixels.std() > 20  # drawn, not a blank page
    probed = tmp_path / "probe.html"
    probed.write_text(report["html"].replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = headless(browser, "--dump-dom", "--virtual-time-budget=10000", f"file://{probed}")
    found = json.loads(html.unescape(re.search(r'data-probe="([^"]*)"', dom).group(1)))
    assert found["sections"] == list(SECTIONS)
    assert found["images"] == report["html"].count("<img ") and found["broken"] == 0
    assert found["width"] <= 1400  # nothing wider than the window


# ---------------------------------------------------------------- only what is published


def _root_with_playlists(tmp_path, lists) -> str:
    root = str(tmp_path / "root")
    folder = write_playlists(root, lists)
    republish(folder, layout.summary(
        "playlists", format_version=1, config={"format": "table"},
        inputs={"files": {"uri": "p.csv", "fingerprint": "0"}},
        counts={"playlists": len(lists), "entries": sum(map(len, lists)),
                "entries_read": sum(map(len, lists)), "tracks_with_meta": 0, "failures": 0},
        dropped={"under_two_tracks/entries": 1, "under_two_tracks/playlists": 1},
    ))  # fmt: skip
    return root


def report_json(result: dict) -> dict:
    with open(result["report.json"]) as f:
        return json.load(f)


def test_missing_parts_name_the_command_that_makes_them(tmp_path):
    root = _root_with_playlists(tmp_path, [["a", "b", "c"], ["b", "c"]])
    body = make_report(root, str(tmp_path / "out"))
    with open(body["index.html"], encoding="utf-8") as f:
        page = f.read()
    assert body["sections"]["playlists"] == "ok"
    assert body["sections"]["audio"] == body["sections"]["pairs"] == "missing"
    assert f"duet shards --tracks MANIFEST --output {root}" in html.unescape(page)
    assert f"duet pairs --data {root}" in html.unescape(page)
    assert f"duet cooccurrence --playlists {layout.at(root, layout.PLAYLISTS)}" in html.unescape(
        page
    )


def test_leftovers_and_a_truncated_marker_are_not_a_report(tmp_path):
    root = str(tmp_path / "root")
    folder = write_playlists(root, [["a", "b", "c"]])
    os.remove(os.path.join(folder, layout.SUCCESS))  # a table whose job never published it
    os.makedirs(layout.at(root, layout.COOC["playlist"]))
    open(layout.at(root, layout.marker(layout.COOC["playlist"])), "wb").close()  # disk was full
    out = str(tmp_path / "out")
    with pytest.raises(NothingPublished, match="no published part"):
        make_report(root, out)
    assert not os.path.exists(out)


def test_unpublished_and_unreadable_parts_are_named_not_read(tmp_path):
    root = _root_with_playlists(tmp_path, [["a", "b", "c"], ["b", "c"]])
    os.makedirs(layout.at(root, layout.embedding_folder("w2v")))
    write_playlists(layout.at(root, layout.EMB), [["x", "y"]], name="w2v/vectors.parquet")
    os.makedirs(layout.at(root, layout.COOC["playlist"]))
    open(layout.at(root, layout.marker(layout.COOC["playlist"])), "wb").close()
    body = report_json(make_report(root, str(tmp_path / "out")))
    emb = body["sections"]["embeddings"]
    assert emb["status"] == "missing" and not emb["tables"] and not emb["figures"]
    assert "no _SUCCESS marker" in emb["missing"][0]["reason"]
    cooc = body["sections"]["cooccurrence"]
    assert cooc["status"] == "missing" and "unreadable _SUCCESS" in cooc["missing"][0]["reason"]


def _freshness(root: str, out: str) -> dict[tuple[str, str], str]:
    rows = report_json(make_report(root, out))["sections"]["provenance"]["tables"]["inputs"]
    return {(r[0], r[1]): r[4] for r in rows["rows"]}


def test_a_table_built_from_an_older_input_is_flagged(tmp_path):
    root = _root_with_playlists(tmp_path, [["a", "b", "c"], ["b", "c"], ["c", "d"]])
    playlists = layout.at(root, layout.PLAYLISTS)
    assert main(["cooccurrence", "--playlists", playlists, "--output", root]) == 0
    assert main(["pairs", "--data", root, "--strategies", "playlist_tco", "--epochs", "0:1",
                 "--run-id", "r1"]) == 0  # fmt: skip
    before = _freshness(root, str(tmp_path / "before"))
    assert before[("cooc/", "playlists")] == before[("pairs/r1/", "topk")] == "current"
    assert main(["cooccurrence", "--playlists", playlists, "--output", root, "--top-k", "1"]) == 0
    _root_with_playlists(tmp_path, [["a", "b", "c", "d"], ["b", "c"]])  # playlists re-run
    after = _freshness(root, str(tmp_path / "after"))
    assert after[("pairs/r1/", "topk")] == "changed since: rebuild this table"  # a table file
    assert after[("cooc/", "playlists")] == "changed since: rebuild this table"  # a folder


def test_dropped_entries_are_shown_by_reason(tmp_path):
    root = _root_with_playlists(tmp_path, [["a", "b", "c"], ["b", "c"]])
    body = report_json(make_report(root, str(tmp_path / "out")))
    rows = body["sections"]["playlists"]["tables"]["dropped"]["rows"]
    assert rows == [["under_two_tracks", 1, 0, 1]]


# ---------------------------------------------------------------- the command line


def duet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "duet.cli", *args], capture_output=True,
                          text=True)  # fmt: skip


def test_command_writes_the_report_and_prints_its_path(dataset, tmp_path):
    out = str(tmp_path / "card")
    result = duet("report", "--data", dataset, "--output", out, "--run", "LATEST")
    assert result.returncode == 0, result.stderr
    assert os.path.join(out, "index.html") in result.stdout
    assert os.path.exists(os.path.join(out, "report.json"))


def test_a_root_with_nothing_published_is_one_line_and_exit_1(tmp_path):
    result = duet("report", "--data", str(tmp_path), "--output", str(tmp_path / "out"))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if not line.startswith("[report]")]
    assert errors == [f"duet report: {tmp_path} has no published part (no readable _SUCCESS "
                      "marker): run duet shards, duet playlists or another job on it first"]  # fmt: skip


@pytest.mark.parametrize("run", ["../../etc", "nope"])
def test_a_bad_or_unknown_run_is_one_line_and_exit_1(dataset, tmp_path, run):
    result = duet("report", "--data", dataset, "--output", str(tmp_path), "--run", run)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("duet report: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_only_filesystem_options_pass_through(dataset, tmp_path):
    ok = duet("report", "--data", dataset, "--output", str(tmp_path / "a"), "--s3_region_name",
              "us-east-1")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    refused = duet("report", "--data", dataset, "--output", str(tmp_path / "b"), "--runner",
                   "DataflowRunner")  # fmt: skip
    assert refused.returncode != 0
    assert "unrecognized arguments: --runner DataflowRunner" in refused.stderr


# ---------------------------------------------------------------- sampling


def test_large_tables_are_sampled_by_whole_row_groups(tmp_path):
    lists = [[f"t{i}", f"t{i + 1}"] for i in range(1000)]
    path = str(tmp_path / "p.parquet")
    table = schemas.from_rows([{"playlist_id": f"p{i}", "track_ids": t, "source": "s"}
                               for i, t in enumerate(lists)], schemas.PLAYLISTS)  # fmt: skip
    pq.write_table(table, path, row_group_size=100)
    sample = read_sample(path, schemas.PLAYLISTS, ["playlist_id"], 250, seed=0, by_marker=False)
    assert (sample.rows, sample.total) == (300, 1000) and not sample.exact
    again = read_sample(path, schemas.PLAYLISTS, ["playlist_id"], 250, seed=0, by_marker=False)
    assert sample.table.equals(again.table)
    ids = [int(p[1:]) for p in sample.table.column("playlist_id").to_pylist()]
    assert all(i // 100 == ids[k - k % 100] // 100 for k, i in enumerate(ids))
    whole = read_sample(path, schemas.PLAYLISTS, ["playlist_id"], 1000, seed=0, by_marker=False)
    assert whole.exact and whole.rows == 1000


def test_rows_by_id_skip_row_groups_whose_range_excludes_them(tmp_path):
    path = str(tmp_path / "t.parquet")
    rows = [{"track_id": f"t{i:04d}", "rank": 0, "neighbor_id": "x", "count": i}
            for i in range(1000)]  # fmt: skip
    pq.write_table(schemas.from_rows(rows, schemas.TOPK), path, row_group_size=100)
    found = read_ids(path, schemas.TOPK, ["count"], ["t0005", "t0950", "missing"], by_marker=False)
    assert found.column("count").to_pylist() == [5, 950]


def test_numbers_are_shown_with_separators_and_units():
    assert render.number(1234567) == "1,234,567"
    assert render.number(92.94, "%") == "92.94 %"
    assert render.number(None) == "—"
    assert render.number(0.000123) == "0.000123"
    assert render.number(float(np.float64(12345.6))) == "12,346"
