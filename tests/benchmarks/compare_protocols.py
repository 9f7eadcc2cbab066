"""A duet-trained encoder against the same encoder untrained, on the sample catalogue, with each
paper's protocol that fits it: Choi et al.'s classifiers and CLMR's linear evaluation on the
genres, Ferraro et al.'s continuation on the playlists (Covers80-style cover sets do not exist
in the sample catalogue, so PEMR's protocol does not fit).

    python -m tests.benchmarks.compare_protocols [--tracks 160] [--epochs 10] [--out DIR]

Prints one Markdown table (the README's) and writes ``protocols.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

from duet.cli import main


def run(argv: list[str]) -> None:
    if main(argv) != 0:
        raise SystemExit(f"failed: duet {' '.join(argv)}")


def evaluate(emb: str, out: str, *argv: str) -> dict:
    report = os.path.join(out, f"{argv[1]}.json")
    run(["evaluate", "--embeddings", emb, *argv, "--output", report])
    with open(report) as f:
        return json.load(f)


def main_(args: argparse.Namespace) -> dict:
    catalog, root = os.path.join(args.out, "catalog"), os.path.join(args.out, "data")
    tracks = os.path.join(catalog, "tracks.parquet")
    run(["sample-catalog", "--output", catalog, "--tracks", str(args.tracks), "--seed", "0"])
    run(["shards", "--tracks", tracks, "--output", root, "--streams", "mel-alonso"])
    run(["playlists", "--input", os.path.join(catalog, "mpd"), "--format", "mpd", "--output",
         root, "--tracks", root])  # fmt: skip
    run(["cooccurrence", "--playlists", os.path.join(root, "playlists.parquet"), "--output", root])
    run(["splits", "--track-meta", tracks, "--output", root, "--seed", "0"])
    run(["pairs", "--data", root, "--strategies", "playlist_co", "--epochs", f"0:{args.epochs}"])
    splits, playlists = (
        os.path.join(root, "splits.parquet"),
        os.path.join(root, "playlists.parquet"),
    )
    results = {}
    for name, train_args in (
        ("untrained", ["--epochs", "1", "--max-steps", "12", "--set", "lr=0"]),
        ("alonso-co", ["--epochs", str(args.epochs), "--set", "lr=1e-3", "warmup_steps=5"]),
    ):
        out = os.path.join(args.out, name)
        run(["train", "--recipe", "alonso-co", "--data", root, "--out", out, "--batch-size", "16",
             "--workers", "0", "--quiet", *train_args])  # fmt: skip
        emb = os.path.join(out, "embeddings.parquet")
        run(["embed", "--checkpoint", os.path.join(out, "checkpoint.pt"), "--data", root,
             "--output", emb])  # fmt: skip
        results[name] = {
            "choi": evaluate(emb, out, "--protocol", "choi", "--labels", tracks, "--splits", splits),
            "clmr-linear": evaluate(emb, out, "--protocol", "clmr-linear", "--labels", tracks,
                                    "--label-column", "genres", "--splits", splits),
            "ferraro-continuation": evaluate(emb, out, "--protocol", "ferraro-continuation",
                                             "--playlists", playlists, "--splits", splits),
        }  # fmt: skip
    with open(os.path.join(args.out, "protocols.json"), "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    print(
        "| encoder | Choi: SVM acc. | Choi: logistic acc. | CLMR: tag ROC-AUC | CLMR: tag PR-AUC "
        "| Ferraro: nDCG@100 | Ferraro: MAP@100 |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        c, lin, cont = r["choi"], r["clmr-linear"], r["ferraro-continuation"]
        print(f"| {name} | {c['svm']['accuracy']:.3f} | {c['logistic']['accuracy']:.3f} "
              f"| {lin['tag_roc_auc']:.3f} ± {lin['tag_roc_auc_std']:.3f} "
              f"| {lin['tag_pr_auc']:.3f} ± {lin['tag_pr_auc_std']:.3f} "
              f"| {cont['ndcg@100']:.4f} | {cont['map@100']:.4f} |")  # fmt: skip
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default=None)
    parsed = parser.parse_args()
    parsed.out = parsed.out or tempfile.mkdtemp(prefix="duet-protocols-")
    main_(parsed)
