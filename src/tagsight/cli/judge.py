"""``tagsight judge aesthetic|pairs|serve|stats|report``: measure quality-tuning on samples before and after."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from tagsight.cli.options import add_json_option, emit, format_fields
from tagsight.fsio import ReasonError

ERRORS = (ReasonError, OSError, ValueError, KeyError)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("judge", help="measure quality-tuning: aesthetic scores and a blind preference study",
                       description="Compare samples of a model before and after quality-tuning (folders written "
                                   "by 'tagsight generate --out DIR' with the same prompts and seeds).")
    verbs = p.add_subparsers(dest="judge_verb", metavar="ACTION")
    a = verbs.add_parser("aesthetic", help="score both folders with the curation aesthetic scorer",
                         description="Score every image of BEFORE and AFTER with the aesthetic scorer curation uses "
                                     "(the classical prior, or --head) and write STUDY/aesthetic.json: per image "
                                     "scores, means, the paired mean difference with a bootstrap 95% interval, the "
                                     "share of pairs where after scores higher, per-prompt means and the prior's "
                                     "four measures.")
    _dirs(a)
    a.add_argument("--head", type=Path, help="aesthetic head from 'tagsight curate aesthetic-train' (default: prior)")
    a.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    a.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    add_json_option(a)
    a.set_defaults(func=_guarded("aesthetic", run_aesthetic))
    pr = verbs.add_parser("pairs", help="make a blind pairwise-preference study",
                          description="Pair BEFORE with AFTER, randomise each pair's left/right placement and the "
                                      "order (from --seed), copy the images under opaque ids into STUDY and keep the "
                                      "unblinding in STUDY/unblind.json, which the page never serves.")
    _dirs(pr)
    pr.add_argument("--seed", type=int, default=0, help="seed of placement, order and ids")
    add_json_option(pr)
    pr.set_defaults(func=_guarded("pairs", run_pairs))
    s = verbs.add_parser("serve", help="serve the blind rating page of a study",
                         description="Open http://HOST:PORT/?rater=NAME. Keys: left arrow or A: left is better; "
                                     "right arrow or L: right is better; down arrow or =: no preference; Z: undo. "
                                     "Votes are appended to STUDY/votes.parquet; reopening the page resumes.")
    s.add_argument("study", type=Path, help="a study folder made by 'tagsight judge pairs'")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8766, help="port (default 8766)")
    s.set_defaults(func=run_serve)
    st = verbs.add_parser("stats", help="unblind the votes: win rate, Wilson interval, sign test, agreement, bias")
    st.add_argument("study", type=Path, help="a study folder with votes")
    add_json_option(st)
    st.set_defaults(func=_guarded("stats", run_stats))
    r = verbs.add_parser("report", help="HTML report of a study: sample grids, score distributions, win rate")
    r.add_argument("study", type=Path, help="a study folder with votes")
    r.add_argument("--out", type=Path, help="HTML file (default STUDY/report.html)")
    r.set_defaults(func=_guarded("report", run_report))
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _dirs(p: argparse.ArgumentParser) -> None:
    p.add_argument("before", type=Path, metavar="BEFORE_DIR", help="samples of the base model")
    p.add_argument("after", type=Path, metavar="AFTER_DIR", help="samples of the quality-tuned model")
    p.add_argument("--out", type=Path, required=True, metavar="STUDY", help="study folder to write")


def _fail(verb: str, exc: Exception) -> int:
    print(f"tagsight judge {verb}: {getattr(exc, 'reason', 'error')}: {exc}", file=sys.stderr)
    return 2


def _guarded(verb: str, run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``run`` with its expected errors (``ERRORS``) turned into one line on stderr and exit code 2."""
    def call(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except ERRORS as exc:
            return _fail(verb, exc)
    return call


def run_aesthetic(args: argparse.Namespace) -> int:
    from tagsight.curate.judge.aesthetic import AestheticStudyConfig, aesthetic_study

    cfg = AestheticStudyConfig(str(args.head) if args.head else None, args.resamples, args.seed)
    result = aesthetic_study(args.before, args.after, args.out, cfg)
    shown = {**{k: result[k] for k in ("scorer", "pairs", "prompts", "aesthetic")},
             "measures": {m: {k: v[k] for k in ("before", "after", "mean_diff", "ci95")}
                          for m, v in result["measures"].items()}}
    emit(args, shown, lambda: format_fields(shown))
    return 0


def run_pairs(args: argparse.Namespace) -> int:
    from tagsight.curate.judge.pairs import make_pair_study

    summary = make_pair_study(args.before, args.after, args.out, args.seed)
    emit(args, summary, lambda: format_fields(summary))
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from tagsight.curate.judge.queue import VoteQueue

    try:
        queue = VoteQueue(args.study)
    except ERRORS as exc:
        return _fail("serve", exc)
    import uvicorn

    from tagsight.curate.judge.app import create_judge_app

    print(f"rating page: http://{args.host}:{args.port}/?rater=YOUR_NAME", file=sys.stderr)
    uvicorn.run(create_judge_app(queue), host=args.host, port=args.port, log_level="warning")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from tagsight.curate.judge.preference import preference_stats

    result = preference_stats(args.study)
    shown = {k: v for k, v in result.items() if k not in ("before", "after")}
    emit(args, shown, lambda: format_fields(shown))
    return 0


def run_report(args: argparse.Namespace) -> int:
    from tagsight.report.judge import write_judge_report

    path = write_judge_report(args.study, args.out or args.study / "report.html")
    print(path)
    return 0
