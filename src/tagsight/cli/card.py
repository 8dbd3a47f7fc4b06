"""``tagsight card DATASET_DIR|RUN_DIR [--vocab V] [--out CARD.md] [--html REPORT.html]``."""

from __future__ import annotations

import argparse
import sys

from tagsight.cli.options import add_json_option, emit
from tagsight.fsio import ReasonError
from tagsight.storage import dataset_path, join, write_text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("card", help="write the data card of a dataset or the model card of a run (Markdown, HTML)",
                       description="Data card: counts by consent basis, visibility, region and licence, exclusions "
                                   "by reason, de-duplication, forgetting, vocabulary. Model card: training data "
                                   "version, recipe, evaluation results, known limits.")
    p.add_argument("path", type=dataset_path,
                   help="a dataset folder (manifest.json) or a run folder (run.json), local or an fsspec URL")
    p.add_argument("--vocab", type=dataset_path, default=None, help="vocabulary to describe in a data card")
    p.add_argument("--out", type=dataset_path, default=None, help="Markdown file (default: PATH/CARD.md)")
    p.add_argument("--html", type=dataset_path, default=None, help="also write the card as an HTML report here "
                   "(a path or an fsspec URL)")
    add_json_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tagsight.report.cards import add_card_section, card_for
    from tagsight.report.html import Report

    try:
        card = card_for(args.path, args.vocab)
        out = write_text(args.out or join(args.path, "CARD.md"), card.markdown())
        if args.html:
            add_card_section(Report(card.title), args.path, args.vocab).write(args.html)
    except (ReasonError, FileNotFoundError) as exc:
        print(f"tagsight card: {getattr(exc, 'reason', 'missing_input')}: {exc}", file=sys.stderr)
        return 2
    emit(args, {"title": card.title, "out": str(out), "html": str(args.html) if args.html else None},
         f"wrote {out}" + (f" and {args.html}" if args.html else ""))
    return 0
