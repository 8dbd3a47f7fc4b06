"""``tagsight curate filter|export|aesthetic-train``: quality curation as in Emu (filters, people, a small set)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tagsight.cli.options import (add_config_options, add_deprecated, add_json_option, config_from_args,
                                  dataset_input, emit, fail, format_fields, given, resolve_config,
                                  show_usage)
from tagsight.cli.engine import add_engine_options, engine_config
from tagsight.storage import dataset_path, join, local_folder, location, output_folder, shared_folder


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("curate", help="curate a small photogenic set: automatic filters, human review, export")
    verbs = p.add_subparsers(dest="curate_verb", metavar="ACTION")
    _register_filter(verbs)
    _register_export(verbs)
    _register_aesthetic(verbs)
    _register_review(verbs)
    rep = verbs.add_parser("report", help="HTML report of a curation: counts, score histograms, examples per reason")
    rep.add_argument("dataset", type=dataset_input, help="a dataset folder scored by 'tagsight curate filter' "
                     "(or its fsspec URL)")
    rep.add_argument("--out", type=dataset_path, help="HTML file, local or an fsspec URL (default DATASET/curation.html, "
                     "on the store for a dataset at a URL)")
    rep.set_defaults(func=run_report)
    p.set_defaults(func=show_usage(p))


def _register_filter(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    f = verbs.add_parser(
        "filter", help="run the automatic filter chain and record every score and reason in the catalog",
        description="Score every sample of DATASET with the configured chain (resolution and aspect, popularity, "
                    "exposure, contrast, colourfulness, blur, near-duplicates, moderation, text-heavy, aesthetic) "
                    "and write DATASET/catalog/curation.parquet (status, stage, reason, every metric) and "
                    "curation.json (config and counts: samples = passed + rejected by reason).")
    f.add_argument("dataset", type=dataset_path, help="a dataset folder (made by 'tagsight ingest'), or its fsspec URL "
                   "(scored in a local copy, published back manifest last)")
    add_config_options(f, "CurateConfig (the filter chain; default: every filter with its default thresholds)",
                       "keep_top=200", "configs/curate_default.yaml")
    f.add_argument("--score-all", action="store_true", default=None, help="score every sample with every filter "
                   "(default: each filter sees only what passed the ones before it)")
    f.add_argument("--keep-top", type=int, help="after the filters, keep only the N best by aesthetic score")
    f.add_argument("--workers", type=int, default=None, help="worker processes of the per-sample filters (default: "
                   "1, in this process, with --engine local; every CPU with --engine ray)")
    add_engine_options(f, "the per-sample filters (resolution, exposure, contrast, colourfulness, blur, text), by "
                       "blocks of samples", "--workers processes, in this process by default")
    add_json_option(f)
    f.set_defaults(func=run_filter)


def _register_export(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    e = verbs.add_parser(
        "export", help="write the curated set as a new dataset version naming its parent",
        description="Keep the samples that passed STAGE (filter: the automatic filters; generalist: also kept in "
                    "the fast review; specialist: also rated at least --min-rating) and write them to OUT as a new "
                    "dataset version whose manifest names DATASET as its parent.")
    e.add_argument("dataset", type=dataset_input, help="a curated dataset folder (or its fsspec URL)")
    e.add_argument("--out", type=dataset_path, required=True, help="new dataset folder, or an fsspec URL (published "
                   "manifest last)")
    e.add_argument("--stage", choices=("filter", "generalist", "specialist"), default=None,
                   help="export what passed the automatic filters (default), the generalist review or the specialist "
                        "ratings")
    e.add_argument("--min-keep-votes", type=int, default=None, help="generalist keep votes needed (default 1: recall)")
    e.add_argument("--min-rating", type=float, default=None, help="mean specialist rating needed, 1-5 (default 3.5)")
    e.add_argument("--keep-top", dest="top", type=int, help="keep at most the N best-rated (specialist stage)")
    add_deprecated(e, "--top", "--keep-top N", dest="top", type=int)
    add_config_options(e, "ExportConfig", "min_rating=4")
    add_json_option(e)
    e.set_defaults(func=run_export)


def _register_aesthetic(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = verbs.add_parser(
        "aesthetic-train", help="fit the aesthetic head on the specialists' ratings",
        description="Fit a ridge head on frozen BACKBONE embeddings to predict each rated photo's mean specialist "
                    "rating (catalog/reviews.parquet); use it with the aesthetic filter's 'head' setting.")
    a.add_argument("dataset", type=dataset_input, help="a dataset folder with specialist ratings (or its fsspec URL)")
    a.add_argument("--backbone", default="efficientnet-lite0", help="a run folder, timm:NAME or efficientnet-lite0")
    a.add_argument("--img-size", type=int, default=None, help="input resolution (default: the backbone's)")
    a.add_argument("--l2", type=float, default=1.0, help="ridge penalty per sample (default 1.0)")
    a.add_argument("--out", type=dataset_path, required=True, help="head file to write (one JSON file), local or an "
                   "fsspec URL")
    add_json_option(a)
    a.set_defaults(func=run_aesthetic)


def _register_review(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = verbs.add_parser(
        "review", help="serve the two-stage review page (generalists keep/reject, specialists rate and caption)",
        description="Serve a web page for human review of the samples that passed 'curate filter'. Stage 1 "
                    "(generalist): keep/reject with K/R or the arrow keys. Stage 2 (specialist): 1-5 ratings of "
                    "composition, lighting, colour and contrast, subject and background, storytelling, and a caption. "
                    "Every judgement is appended to DATASET/catalog/reviews.parquet; reopening the page resumes. "
                    "A dataset at an fsspec URL is served from a local copy and its reviews published back when the "
                    "server stops (docs/storage.md). Open http://HOST:PORT/?reviewer=NAME&stage=generalist")
    r.add_argument("dataset", type=dataset_path, help="a dataset folder scored by 'tagsight curate filter', or its "
                   "fsspec URL")
    r.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    r.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    r.add_argument("--min-keep-votes", type=int, default=1, help="stage-1 keep votes a photo needs for stage 2")
    r.add_argument("--stats", action="store_true", help="print the agreement statistics and exit")
    add_json_option(r)
    r.set_defaults(func=run_review)


def run_review(args: argparse.Namespace) -> int:
    from tagsight.curate.review.agreement import agreement
    from tagsight.curate.review.queue import ReviewQueue
    from tagsight.curate.reviews import REVIEWS_FILE, read_reviews

    try:
        if args.stats:
            stats = agreement(read_reviews(local_folder(args.dataset, marker="manifest.json")))
            emit(args, stats, lambda: format_fields(stats))
            return 0
        with shared_folder(args.dataset, "manifest.json", (REVIEWS_FILE.as_posix(),)) as dataset:
            queue = ReviewQueue(dataset, args.min_keep_votes)
            import uvicorn

            from tagsight.curate.review.app import create_review_app

            print(f"review page: http://{args.host}:{args.port}/?stage=generalist&reviewer=YOUR_NAME", file=sys.stderr)
            uvicorn.run(create_review_app(queue), host=args.host, port=args.port, log_level="warning")
    except (OSError, ValueError) as exc:   # a reason-coded error (ReasonError) is a ValueError
        return fail("curate review", exc)
    return 0


def run_filter(args: argparse.Namespace) -> int:
    from tagsight.curate.chain import CurateConfig, run_filters
    from tagsight.engines import EngineError, create_engine

    try:
        cfg = resolve_config(CurateConfig.from_yaml, args, given(score_all=args.score_all, keep_top=args.keep_top))
        workers = args.workers if args.workers is not None else (1 if args.engine == "local" else 0)
        with create_engine(engine_config(args, workers)) as engine:
            with output_folder(args.dataset, marker="manifest.json") as dataset:
                info = run_filters(dataset, cfg, engine=engine)
    except (OSError, ValueError, KeyError, TypeError, ImportError, EngineError) as exc:
        return fail("curate filter", exc)
    counts = {k: info[k] for k in ("samples", "passed", "rejected", "skipped", "seconds")}
    emit(args, counts, lambda: format_filter(counts))
    return 0


def format_filter(counts: dict[str, Any]) -> str:
    """samples = passed + rejected, the rejections by reason, the filters that did not apply."""
    rejected = counts["rejected"] or {}
    lines = [f"samples: {counts['samples']} = {counts['passed']} passed + {sum(rejected.values())} rejected "
             f"({counts['seconds']:.1f}s)"]
    lines += [f"  rejected {n:>6}  {reason}" for reason, n in sorted(rejected.items(), key=lambda kv: -kv[1])]
    skipped = {k: v for k, v in (counts["skipped"] or {}).items() if v}
    if skipped:
        lines.append("filters that did not apply: " + ", ".join(f"{k} ({v})" for k, v in skipped.items()))
    return "\n".join(lines)


def run_export(args: argparse.Namespace) -> int:
    from tagsight.curate.export import ExportConfig, export_curated

    try:
        cfg = config_from_args(ExportConfig, args, given(stage=args.stage, min_keep_votes=args.min_keep_votes,
                                                         min_rating=args.min_rating, top=args.top))
        with output_folder(args.out, marker="manifest.json") as out:
            summary = export_curated(args.dataset, out, cfg)
    except (OSError, ValueError) as exc:
        return fail("curate export", exc)
    result = summary.to_dict()
    emit(args, result, lambda: format_fields(result))
    return 0


def run_aesthetic(args: argparse.Namespace) -> int:
    from tagsight.curate.aesthetic_train import train_aesthetic_head

    try:
        stats = train_aesthetic_head(args.dataset, args.backbone, args.out, args.img_size, args.l2)
    except (OSError, ValueError) as exc:
        return fail("curate aesthetic-train", exc)
    emit(args, stats, lambda: format_fields(stats))
    return 0


def run_report(args: argparse.Namespace) -> int:
    from tagsight.report.curation import write_curation_report

    try:
        out = args.out or join(dataset_path(location(args.dataset)), "curation.html")   # beside the dataset
        path = write_curation_report(args.dataset, out)
    except (OSError, ValueError) as exc:
        print(f"tagsight curate report: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0
