"""``tagsight report RUN_DIR [RUN_DIR ...] --out report.html``: one self-contained HTML page of runs."""

from __future__ import annotations

import argparse
import sys

from tagsight.storage import dataset_path, local_folder, write_text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="HTML report of runs: curves, hashtag mAP, transfer, confusion, samples",
                       description="Write one self-contained HTML file (plots inline, no external files) about "
                                   "one or more run folders: training curves from metrics.jsonl, held-out hashtag "
                                   "metrics from eval.json, the transfer table of every eval result, per-class "
                                   "accuracy and confusion matrices, and held-out sample images with predicted "
                                   "vs written hashtags.")
    p.add_argument("runs", nargs="+", type=dataset_path, metavar="RUN_DIR",
                   help="run folders (pretrain or fine-tune), local or fsspec URLs (copied into the local cache)")
    p.add_argument("--out", type=dataset_path, required=True,
                   help="the HTML file to write, local or an fsspec URL")
    p.add_argument("--title", default="tagsight report", help="page title")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tagsight.cli.methods  # noqa: F401  (a run's config names its method)
    from tagsight.fsio import ReasonError
    from tagsight.report.run import run_report

    try:
        runs = [local_folder(r, marker="run.json") for r in args.runs]   # a URL: mirrored, refused unfinished
        page = run_report(runs, args.title).render()
        write_text(args.out, page)          # a local file atomically, or an fsspec URL (one object put)
        size = len(page.encode("utf-8"))
    except (ReasonError, ValueError, FileNotFoundError) as exc:
        print(f"tagsight report: {getattr(exc, 'reason', 'error')}: {exc}", file=sys.stderr)
        return 2
    print(f"report written to {args.out} ({size:,} bytes)")
    return 0
