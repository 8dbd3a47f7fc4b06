"""``tagsight relevance score|filter|truth|report``: keep the hashtags the pictures actually show."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tagsight.cli.options import (add_config_options, add_deprecated, add_json_option, artifact_input, dataset_input,
                                  emit, given, input_file, local_cache_folder, resolve_config)
from tagsight.cli.engine import add_engine_options, engine_config
from tagsight.storage import dataset_path, join, location, output_folder, write_text

SCORES = artifact_input("scores.json", "scores folder")

DEFAULT_CACHE = Path.home() / ".cache" / "tagsight" / "features"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("relevance", help="score (image, hashtag) pairs with a cross-fitted model; filter datasets",
                       description="Score every (image, label) pair of a dataset with a hashtag-prediction head "
                                   "that never trained on that image (K-fold cross-fitting over posts, on frozen "
                                   "features of an external backbone), score each label's visualness (its "
                                   "out-of-fold AP above chance), and write filtered dataset versions with lineage.")
    verbs = p.add_subparsers(dest="relevance_verb", metavar="ACTION", required=True)
    _register_score(verbs)
    _register_filter(verbs)
    _register_truth(verbs)
    _register_report(verbs)


def _register_score(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = verbs.add_parser("score", help="cross-fitted pair scores and label visualness of a dataset")
    s.add_argument("dataset", type=dataset_input, help="a dataset folder (made by 'tagsight ingest'), or its fsspec URL")
    s.add_argument("--vocab", type=dataset_path, required=True,
                   help="its vocabulary (vocab.json or its folder), local or an fsspec URL")
    s.add_argument("--out", type=dataset_path, required=True, help="scores folder to write (pairs.parquet, "
                   "labels.json, scores.json), local or an fsspec URL (published scores.json last)")
    s.add_argument("--backbone", default=None, help="feature backbone: any 'tagsight eval' spec "
                   "(default: the packaged ImageNet efficientnet-lite0, which never saw this dataset)")
    s.add_argument("--img-size", type=int, default=None, help="backbone input size (default: the backbone's)")
    s.add_argument("--folds", type=int, default=None, help="cross-fitting folds, split by post (default 5)")
    s.add_argument("--loss", choices=("bce", "softmax"), default=None, help="head loss (default bce)")
    s.add_argument("--epochs", type=int, default=None, help="head training epochs per fold (default 10)")
    s.add_argument("--seed", type=int, default=None, help="fold assignment and head training seed (default 0)")
    s.add_argument("--workers", type=int, default=0, help="feature extraction data loader workers (default 0)")
    s.add_argument("--cache-dir", type=local_cache_folder, default=DEFAULT_CACHE,
                   help=f"feature cache, a local folder (default {DEFAULT_CACHE})")
    add_config_options(s, "ScoreConfig (the head's lr, weight_decay, batch_size and the flags above)",
                       "lr=0.003")
    add_json_option(s)
    add_engine_options(s, "feature extraction", "in this process, with --workers data loader processes")
    s.set_defaults(func=run_score)


def _register_filter(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    f = verbs.add_parser("filter", help="write a new dataset version from a scores folder, dropping what --select says")
    f.add_argument("scores", type=SCORES, help="a scores folder (made by 'tagsight relevance score'), local or an "
                   "fsspec URL")
    f.add_argument("--select", dest="select", choices=("pairs", "labels", "weights"), default=None,
                   help="what to drop (required): pairs: pairs scoring below --threshold; labels: labels whose "
                        "visualness (out-of-fold AP above chance) is below --threshold; weights: nothing, store "
                        "per-hashtag loss weights")
    add_deprecated(f, "--policy", "--select", dest="select", choices=("pairs", "labels", "weights"))
    f.add_argument("--threshold", type=float, default=None, help="score or visualness threshold in [0, 1]")
    f.add_argument("--min-weight", type=float, default=0.01, help="--select weights: smallest weight (default 0.01)")
    f.add_argument("--keep-empty", action="store_true", help="keep posts whose labelled hashtags were all dropped")
    f.add_argument("--dataset", type=dataset_input, default=None,
                   help="the scored dataset, a folder or an fsspec URL (default: as recorded in scores, a URL "
                        "mirrored)")
    f.add_argument("--out", type=dataset_path, required=True,
                   help="folder for the NEW dataset version (new or empty), or an fsspec URL (published manifest last)")
    add_json_option(f)
    f.set_defaults(func=run_filter)


def _register_truth(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    t = verbs.add_parser("truth", help="precision/recall of flagging against a social-imagenette truth.jsonl")
    t.add_argument("scores", type=SCORES, help="a scores folder, local or an fsspec URL")
    t.add_argument("--truth", type=input_file, required=True, help="SOURCE_DIR/<split>/truth.jsonl of "
                   "social-imagenette, local or an fsspec URL")
    t.add_argument("--thresholds", type=float, nargs="+", default=None, help="pair score thresholds to tabulate")
    t.add_argument("--visualness-thresholds", type=float, nargs="+", default=None,
                   help="label visualness thresholds to tabulate (flagging as --select labels does)")
    t.add_argument("--out", type=dataset_path, default=None, help="JSON file to write the result to, local or an "
                   "fsspec URL (default SCORES/truth.json, on the store for scores at a URL)")
    add_json_option(t)
    t.set_defaults(func=run_truth)


def _register_report(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = verbs.add_parser("report", help="HTML report of a scores folder (histograms, least visual labels, drops)")
    r.add_argument("scores", type=SCORES, help="a scores folder, local or an fsspec URL")
    r.add_argument("--truth", type=input_file, default=None, help="social-imagenette truth.jsonl to split plots by "
                   "kind, local or an fsspec URL")
    r.add_argument("--threshold", type=float, default=0.05, help="pair threshold whose drops are shown (default 0.05)")
    r.add_argument("--out", type=dataset_path, required=True, help="HTML file to write, local or an fsspec URL")
    r.set_defaults(func=run_report)


def _fail(verb: str, exc: Exception) -> int:
    print(f"tagsight relevance {verb}: {getattr(exc, 'reason', 'error')}: {exc}", file=sys.stderr)
    return 2


def run_score(args: argparse.Namespace) -> int:
    from tagsight.config import load_config
    from tagsight.fsio import ReasonError
    from tagsight.engines import EngineError, create_engine
    from tagsight.relevance.score import ScoreConfig, save_scores, score_dataset
    from tagsight.tags.vocab import Vocabulary

    try:
        cfg = resolve_config(lambda path, sets: load_config(ScoreConfig, path, sets), args,
                             given(backbone=args.backbone, img_size=args.img_size, folds=args.folds, seed=args.seed,
                                   loss=args.loss, epochs=args.epochs))
        vocab = Vocabulary.load(args.vocab)
        engine_cfg = engine_config(args)
        if engine_cfg.name == "local":  # extraction here, with --workers data loader processes
            scores = score_dataset(args.dataset, vocab, cfg, cache_dir=args.cache_dir, workers=args.workers)
        else:
            with create_engine(engine_cfg) as engine:
                scores = score_dataset(args.dataset, vocab, cfg, cache_dir=args.cache_dir, engine=engine)
        with output_folder(args.out, marker="scores.json") as out:   # a URL: staged, published scores.json last
            save_scores(scores, out, dataset_dir=args.dataset, vocab_path=args.vocab)
            meta = json.loads((out / "scores.json").read_text())
    except (ReasonError, FileNotFoundError, ValueError, EngineError) as exc:
        return _fail("score", exc)
    emit(args, {"out": str(args.out), **meta},
         lambda: f"scores {meta['version']}: {meta['pairs']:,} pairs of {meta['dataset']['samples']:,} samples, "
                 f"{meta['vocab']['labels']} labels, out-of-fold mAP {meta['oof_mAP']:.3f}, "
                 f"{meta['seconds']:.0f}s -> {args.out}")
    return 0


def run_filter(args: argparse.Namespace) -> int:
    from tagsight.fsio import ReasonError
    from tagsight.relevance.filter import FilterConfig, filter_dataset

    try:
        if args.select is None:
            raise ReasonError("missing_select", "give --select pairs|labels|weights")
        cfg = FilterConfig(args.select, args.threshold, args.min_weight, args.keep_empty)
        with output_folder(args.out, marker="manifest.json") as out:
            manifest = filter_dataset(args.scores, out, cfg, args.dataset)
    except (ReasonError, FileNotFoundError, ValueError) as exc:
        return _fail("filter", exc)
    emit(args, manifest, lambda: format_counts(manifest))
    return 0


def format_counts(manifest: dict[str, Any]) -> str:
    """Counts of a filtered dataset's manifest, reconciled, with their reasons."""
    c = manifest["counts"]
    lines = [f"dataset {manifest['version']} (parent {manifest['parent']['version']}), select "
             f"{manifest['relevance']['filter']['policy']}"]
    for unit in ("posts", "pairs", "hashtags"):
        reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(c[f"{unit[:-1]}_reasons"].items(), key=lambda kv: -kv[1]))
        lines.append(f"{unit}: {c[f'{unit}_in']:,} in = {c[f'{unit}_kept']:,} kept + {c[f'{unit}_dropped']:,} "
                     f"dropped ({reasons or 'none'})")
    lines.append(f"{c['hashtags_unscored']:,} hashtags without a label kept unscored; {c['shards']} shard(s)")
    return "\n".join(lines)


def run_truth(args: argparse.Namespace) -> int:
    from tagsight.fsio import ReasonError
    from tagsight.relevance.score import load_labels, load_pairs, load_scores_meta
    from tagsight.relevance.truth import DEFAULT_LABEL_THRESHOLDS, DEFAULT_THRESHOLDS, evaluate_truth, load_truth

    try:
        load_scores_meta(args.scores)
        result = evaluate_truth(load_pairs(args.scores), load_labels(args.scores), load_truth(args.truth),
                                args.thresholds or DEFAULT_THRESHOLDS,
                                args.visualness_thresholds or DEFAULT_LABEL_THRESHOLDS)
        out = args.out or join(dataset_path(location(args.scores)), "truth.json")   # beside the scores, on the store
        write_text(out, json.dumps(result, indent=1) + "\n")
    except (ReasonError, FileNotFoundError, ValueError) as exc:
        return _fail("truth", exc)
    emit(args, result, lambda: format_truth(result))
    return 0


def format_truth(result: dict[str, Any]) -> str:
    """Flagging AP, P/R per threshold and the visualness ranking summary."""
    k = result["by_kind"]
    lines = [f"{result['pairs']:,} pairs: " + ", ".join(f"{name} {v['pairs']:,} (median score "
                                                       f"{v['median_score']:.3f})" for name, v in k.items() if v["pairs"]),
             f"flagging wrong + non-visual pairs: AP {result['flag_ap']:.3f} (chance {result['flag_chance']:.3f})",
             f"{'threshold':>9} {'flagged':>8} {'precision':>9} {'recall':>7} {'true lost':>9}"]
    for title, rows in (("select pairs: score < threshold", result["at_thresholds"]),
                        ("select labels: visualness < threshold", result["label_policy"])):
        lines.append(title)
        lines.extend(f"{r['threshold']:>9g} {r['flagged']:>8,} {r['precision']:>9.3f} {r['recall']:>7.3f} "
                     f"{r['true_pairs_lost']:>9,}" for r in rows)
    s = result["ranking_summary"]
    lines.append(f"visualness: {s['noise_labels']} noise labels, median rank {s['noise_median_rank']} of "
                 f"{s['labels']}, {100 * s['noise_in_bottom_half']:.0f}% in the bottom half; concept labels "
                 f"median rank {s['concept_median_rank']}; AUC concept above noise {s['concept_above_noise_auc']:.3f}")
    return "\n".join(lines)


def run_report(args: argparse.Namespace) -> int:
    from tagsight.fsio import ReasonError
    from tagsight.report.html import Report
    from tagsight.report.relevance import add_relevance_sections

    try:
        report = Report("Hashtag relevance", f"scores {location(args.scores)}")
        add_relevance_sections(report, args.scores, truth=args.truth, threshold=args.threshold)
        write_text(args.out, report.render())
    except (ReasonError, FileNotFoundError, ValueError) as exc:
        return _fail("report", exc)
    print(f"report -> {args.out}")
    return 0
