"""``tagsight report RUN_DIR [RUN_DIR ...] --out report.html``: one self-contained HTML page of runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="HTML report of runs: curves, hashtag mAP, transfer, confusion, samples",
                       description="Write one self-contained HTML file (plots inline, no external files) about "
                                   "one or more run folders: training curves from metrics.jsonl, held-out hashtag "
                                   "metrics from eval.json, the transfer table of every eval result, per-class "
                                   "accuracy and confusion matrices, and held-out sample images with predicted "
                                   "vs written hashtags.")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="run folders (pretrain or fine-tune)")
    p.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    p.add_argument("--title", default="tagsight report", help="page title")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tagsight.cli.methods  # noqa: F401  (a run's config names its method)
    from tagsight.fsio import ReasonError
    from tagsight.report.run import write_run_report

    try:
        path = write_run_report(args.runs, args.out, args.title)
    except (ReasonError, ValueError, FileNotFoundError) as exc:
        print(f"tagsight report: {getattr(exc, 'reason', 'error')}: {exc}", file=sys.stderr)
        return 2
    print(f"report written to {path} ({path.stat().st_size:,} bytes)")
    return 0
