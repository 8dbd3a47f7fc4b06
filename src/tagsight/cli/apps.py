"""``tagsight apps calibrate RUN_DIR``, ``tagsight apps starter`` and ``tagsight apps show BUNDLE``.

Calibration of a run, a starter bundle without training (the ImageNet classifier mapped onto a
vocabulary), and what a bundle serves.
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from tagsight.cli.options import (add_config_options, add_deprecated, add_json_option, config_from_args, emit, fail,
                                  format_fields, given, input_file)
from tagsight.storage import dataset_path, is_url, local_folder, output_folder

if TYPE_CHECKING:
    from tagsight.apps.calibration import CalibrationConfig


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("apps", help="calibrate a run for the hashtag and alt-text apps; show a bundle's apps",
                       description="Apps (hashtags, alt-text, categorize, moderate, similar) answer from one "
                                   "backbone; a bundle folder holds what they need (docs/apps.md).")
    verbs = p.add_subparsers(dest="apps_verb", metavar="ACTION", required=True)
    cal = verbs.add_parser("calibrate", help="fit calibrated hashtag probabilities and alt-text concept thresholds "
                                             "on the run's held-out posts; writes BUNDLE/calibration.json")
    cal.add_argument("run", type=dataset_path, help="a tagsight pretraining run folder (local or an fsspec URL)")
    cal.add_argument("--out", type=dataset_path, default=None,
                     help="bundle folder to write, local or an fsspec URL (default: the run folder)")
    add_deprecated(cal, "--bundle", "--out BUNDLE", dest="out", type=dataset_path)
    cal.add_argument("--method", default=None, help="platt (per-label presence, default) or temperature")
    _target_args(cal)
    cal.add_argument("--verified", type=input_file, default=None,
                     help="JSONL of labels people verified ({\"post_key\", \"labels\"} per post; local or an fsspec "
                          "URL): choose and measure "
                          "alt-text concepts against them instead of the noisy hashtags (docs/apps.md)")
    cal.add_argument("--heldout-dataset", type=dataset_path, default=None,
                     help="an ingested dataset to calibrate on instead of the run's held-out split (every post of "
                          "it, less those whose photos are in the run's training dataset); local or an fsspec URL")
    _open_world_args(cal)
    add_config_options(cal, "CalibrationConfig", "check_fraction=0.4")
    cal.add_argument("--plot", type=dataset_path, default=None, help="write the per-concept precision figure (PNG) "
                     "here, a path or an fsspec URL")
    cal.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    add_json_option(cal)
    cal.set_defaults(func=run)
    st = verbs.add_parser("starter", help="a bundle with hashtags and alt text and no training: the packaged ImageNet "
                                          "classifier mapped onto a vocabulary through WordNet, calibrated on "
                                          "labelled photos")
    st.add_argument("--vocab", type=dataset_path, required=True,
                    help="a tagsight vocabulary (vocab.json or its folder), local or an fsspec URL")
    st.add_argument("--out", type=dataset_path, default=None,
                    help="bundle folder to write (required), local or an fsspec URL (written here, published "
                         "bundle.json last)")
    add_deprecated(st, "--bundle", "--out BUNDLE", dest="out", type=dataset_path)
    st.add_argument("--calibrate-on", type=dataset_path, required=True,
                    help="class folders of labelled photos (local or an fsspec URL, copied into the local cache); a "
                         "folder's name is a vocabulary label (tench.n.01), a WordNet id (n01440764) or a hashtag the "
                         "vocabulary maps; folders no label subsumes are photos of nothing in the vocabulary")
    _target_args(st)
    _open_world_args(st, score="max_logit")
    add_config_options(st, "CalibrationConfig", "check_fraction=0.4")
    st.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    add_json_option(st)
    st.set_defaults(func=run)
    show = verbs.add_parser("show", help="list the apps a bundle serves and why any is missing")
    show.add_argument("bundle", type=dataset_path, help="a bundle folder, local or an fsspec URL")
    add_json_option(show)
    show.set_defaults(func=run)


def _target_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target-precision", type=float, default=None,
                   help="held-out precision an alt-text concept needs (default 0.8)")
    p.add_argument("--min-support", type=int, default=None,
                   help="predictions a threshold needs on the fit half (default 5)")
    p.add_argument("--z", type=float, default=None,
                   help="compare the Wilson lower bound at z std devs (one-sided 95%% by default) to the target "
                        "(0 = raw precision; default 1.645)")
    p.add_argument("--seed", type=int, default=None, help="seed of the fit/check split of the calibration photos "
                                                          "(default 0)")


def _open_world_args(p: argparse.ArgumentParser, score: str = "knn") -> None:
    p.add_argument("--unseen", type=input_file, action="append", default=[],
                   help="image file or folder of photos that show NONE of the vocabulary's concepts, local or an "
                        "fsspec URL (copied into the local cache; repeatable): "
                        "negatives of every concept and the open-set guard's calibration (docs/apps.md)")
    p.add_argument("--rendered-unseen", type=int, default=None,
                   help="also render this many pictures of nothing (empty scenes, textures, patterns, text pages, "
                        "screenshots; default 300, 0 = none)")
    p.add_argument("--max-unseen-rate", type=float, default=None,
                   help="share of unseen fit photos the open-set guard may let through (default 0.025)")
    p.add_argument("--open-set-score", default=None, choices=("knn", "max_logit", "energy"),
                   help=f"what the open-set guard scores (default {score}; docs/apps.md)")


def run(args: argparse.Namespace) -> int:
    from tagsight.fsio import ReasonError

    try:
        if args.apps_verb == "show":
            from tagsight.apps.bundle import load_bundle

            described = load_bundle(args.bundle).describe()
            emit(args, described, lambda: format_bundle(described))
            return 0
        result = starter(args) if args.apps_verb == "starter" else calibrate(args)
    except (ReasonError, FileNotFoundError, ValueError, KeyError) as exc:
        return fail(f"apps {args.apps_verb}", exc)
    emit(args, result, lambda: format_summary(result))
    return 0


def format_bundle(described: dict[str, Any]) -> str:
    """What a bundle serves: its backbone, one line per app, and why any app is missing."""
    lines = [f"bundle {described['bundle']}: backbone {described['backbone']} ({described['backbone_name']})"]
    for name, app in described["apps"].items():
        lines.append(f"  {name:<12} {format_fields(app).replace(chr(10), '; ') if isinstance(app, dict) else app}")
    for name, why in (described.get("missing") or {}).items():
        lines.append(f"  {name:<12} missing: {why}")
    if described.get("aliases"):
        lines.append("aliases: " + ", ".join(f"{a} -> {b}" for a, b in described["aliases"].items()))
    return "\n".join(lines)


def _config(args: argparse.Namespace, base: dict[str, Any] | None = None, **more: Any) -> CalibrationConfig:
    """The CalibrationConfig: defaults (``base``: the verb's own), then --config, then the flags given, then --set."""
    from tagsight.apps.calibration import CalibrationConfig

    flags = given(target_precision=args.target_precision, min_support=args.min_support, z=args.z, seed=args.seed,
                  rendered_unseen=args.rendered_unseen, max_unseen_rate=args.max_unseen_rate,
                  open_set_score=args.open_set_score, **more)
    if args.unseen:
        flags["unseen"] = [str(u) for u in args.unseen]
    return config_from_args(CalibrationConfig, args, flags, base or {})


def starter(args: argparse.Namespace) -> dict[str, Any]:
    from tagsight.apps.starter import calibrate_starter
    from tagsight.fsio import ReasonError

    if args.out is None:
        raise ReasonError("missing_out", "give --out BUNDLE, the bundle folder to write")
    cfg = _config(args, {"open_set_score": "max_logit"})
    with output_folder(args.out, marker="bundle.json") as bundle:   # a URL: written here, then published
        return calibrate_starter(args.vocab, bundle, local_folder(args.calibrate_on), cfg, args.device)


def calibrate(args: argparse.Namespace) -> dict[str, Any]:
    from tagsight.apps.bundle import init_bundle
    import tagsight.cli.methods  # noqa: F401  (a run's config names its method)
    from tagsight.apps.calibration import calibrate_run, plot_concept_precision

    cfg = _config(args, method=args.method, verified=str(args.verified) if args.verified else None,
                  heldout_dataset=str(args.heldout_dataset) if args.heldout_dataset else None)
    if is_url(args.run) and args.out is None:   # into the run itself, on object storage: staged, then published
        with output_folder(args.run, marker="run.json") as run:
            result = calibrate_run(run, None, cfg, args.device)
    else:
        run = local_folder(args.run, marker="run.json")
        with output_folder(args.out, marker="bundle.json") if args.out is not None else nullcontext(None) as bundle:
            if bundle is not None:
                init_bundle(bundle, str(run))
            result = calibrate_run(run, bundle, cfg, args.device)
    if args.plot:
        plot_concept_precision(result, args.plot)
    return result


def format_summary(result: dict[str, Any]) -> str:
    """Calibration figures and the alt-text concepts as a short table."""
    m, s = result["metrics"], result["summary"]
    what = "calibration photos" if result.get("starter") else "held-out posts"
    held = ", ".join(f"{k} {v}" for k, v in result["heldout"].items() if not isinstance(v, (dict, list)))
    cal = result["calibrator"]
    lines = [f"{what}: {held}", f"calibrator: {cal.get('method', '?')} ({cal.get('loss', '?')} loss)"]
    for half in ("fit", "check"):
        raw, cal = m[half]["raw"], m[half]["calibrated"]
        lines.append(f"{half:<5} NLL {raw['nll']:.4f} -> {cal['nll']:.4f}   ECE {raw['ece']:.4f} -> {cal['ece']:.4f}")
    lines.append(f"alt-text concepts measured against {result['heldout'].get('concepts_measured_on', 'hashtags')}")
    lines.append(f"alt-text concepts: {s['alt_text_concepts']} of {s['labels']} labels; check-half pooled precision "
                 f"{s['check_pooled_precision']} over {s['check_predictions']} predictions; "
                 f"{s['check_concepts_meeting_target']} of {s['check_concepts_measured']} measured concepts "
                 f"reach {s['target_precision']}")
    lines += format_open_set(result.get("open_set"))
    lines.append(f"{'concept':<24} {'threshold':>9} {'fit P':>6} {'fit n':>6} {'check P':>8} {'check n':>8}")
    for c in result["concepts"]:
        if c["alt_text"]:
            chk = c["check"]
            p = f"{chk['precision']:.3f}" if chk["predicted"] else "-"
            lines.append(f"{c['name'][:24]:<24} {c['threshold']:>9.3f} {c['fit']['precision']:>6.3f} "
                         f"{c['fit']['predicted']:>6} {p:>8} {chk['predicted']:>8}")
    return "\n".join(lines)


def format_open_set(record: dict[str, Any] | None) -> list[str]:
    """The open-set guard's threshold and what it lets through on each half."""
    if not record:
        return ["open-set guard: none (calibrated without photos of nothing in the vocabulary)"]
    lines = [f"open-set guard: {record['score']} >= {record['threshold']:.4f}"]
    for half in ("fit", "check"):
        h = record[half]
        lines.append(f"{half:<5} unseen photos with a concept {_rate(h['unseen_with_a_concept'])}, passing the guard "
                     f"{_rate(h['unseen_familiar'])}; in-vocabulary photos with a concept "
                     f"{_rate(h['in_vocabulary_with_a_concept'])}")
    return lines


def _rate(r: dict[str, Any]) -> str:
    return f"{r['passing']}/{r['photos']}" + (f" ({r['rate']:.3f})" if r["rate"] is not None else "")
