"""``tagsight judge aesthetic|pairs|serve|merge|stats|report|adherence``: measure a generator's samples (before and after
quality-tuning)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tagsight.cli.options import (add_json_option, artifact_input, dataset_input, emit, format_fields, input_file,
                                  photos_input, show_usage)
from tagsight.fsio import ReasonError
from tagsight.storage import dataset_path, local_folder, local_input, location, output_folder, shared_folder

if TYPE_CHECKING:
    from tagsight.curate.judge.adherence import RunJudge

ERRORS = (ReasonError, OSError, ValueError, KeyError)
SAMPLES = artifact_input("samples.jsonl", "samples folder")   # as 'tagsight generate --out' publishes it
VOTES = ("votes.parquet",)   # the table raters append to; merged with what others published to the same URL


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    a.add_argument("--head", type=input_file, help="aesthetic head from 'tagsight curate aesthetic-train', local or an "
                   "fsspec URL (default: prior)")
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
    s.add_argument("study", type=dataset_path, help="a study folder made by 'tagsight judge pairs', local or an fsspec "
                   "URL (served from a local copy; the votes published back when the server stops)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8766, help="port (default 8766)")
    s.set_defaults(func=run_serve)
    st = verbs.add_parser("stats", help="unblind the votes: win rate, Wilson interval, sign test, agreement, bias")
    st.add_argument("study", type=dataset_path, help="a study folder with votes, local or an fsspec URL")
    add_json_option(st)
    st.set_defaults(func=_guarded("stats", run_stats))
    r = verbs.add_parser("report", help="HTML report of a study: sample grids, score distributions, win rate")
    r.add_argument("study", type=dataset_path, help="a study folder with votes, local or an fsspec URL")
    r.add_argument("--out", type=dataset_path, help="HTML file, local or an fsspec URL (default STUDY/report.html)")
    r.set_defaults(func=_guarded("report", run_report))
    _adherence_parser(verbs)
    c = verbs.add_parser("conditioning", help="how much a generator uses its prompt (held-out loss, own vs null "
                                              "tokens)",
                         description="The held-out denoising loss of RUN's EMA weights on DATASET's held-out posts "
                                     "with each post's own tokens and with the null token (same fixed noise and "
                                     "timesteps), per timestep band: gain = null - own. Near 0: the prompt barely "
                                     "changes what the model predicts, so every prompt gives nearly the same "
                                     "picture at a seed.")
    c.add_argument("run", type=dataset_path, help="a generator run or tuned folder, local or an fsspec URL")
    c.add_argument("dataset", type=dataset_input,
                   help="a dataset (its held-out split is measured), local or an fsspec URL")
    c.add_argument("--checkpoint", default="auto", help="auto (default), latest, best or step-N")
    c.add_argument("--repeats", type=int, default=4, help="timestep bands, one draw each per post (default 4)")
    c.add_argument("--max-samples", type=int, default=None, help="measure only the first N held-out posts")
    c.add_argument("--out", type=dataset_path, help="also write the result to this JSON file, local or an fsspec URL")
    add_json_option(c)
    c.set_defaults(func=_guarded("conditioning", run_conditioning))
    m = verbs.add_parser("merge", help="merge the votes of copies of a study rated elsewhere",
                         description="Append to STUDY/votes.parquet the votes of copies of the same study (folders "
                                     "whose pairs.json is identical, rated on other machines with their own "
                                     "?rater=NAME) or of their votes.parquet files; rows already present are not "
                                     "added twice. Then 'tagsight judge stats STUDY' reports every rater, the pooled "
                                     "win rate and the raters' agreement.")
    m.add_argument("study", type=dataset_path, help="the study folder that collects the votes, local or an fsspec URL")
    m.add_argument("sources", type=dataset_path, nargs="+", metavar="COPY",
                   help="study copies or votes.parquet files, local or fsspec URLs")
    add_json_option(m)
    m.set_defaults(func=_guarded("merge", run_merge))
    p.set_defaults(func=show_usage(p))


def _adherence_parser(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ad = verbs.add_parser("adherence", help="does the generator draw the prompted concept? (and its distance to "
                                            "real photos)",
                          description="A classifier that did not train the generator names the most probable of "
                                      "the prompted concepts in every sample (a prompt names one vocabulary label): "
                                      "the packaged ImageNet EfficientNet-Lite0 (a concept sums the ImageNet classes "
                                      "it subsumes in WordNet), or with --judge a hashtag model trained on real "
                                      "photos. Per sample folder (e.g. before and after quality-tuning) and "
                                      "prompt: accuracy with a Wilson 95%% interval against chance (1 / concepts) "
                                      "and against the same classifier on real photos of the concepts downsampled "
                                      "to the samples' resolution; and the Frechet distance to those photos on "
                                      "Lite0's pooled features, with a bootstrap interval and a real-vs-real "
                                      "floor. Writes STUDY/adherence.json ('tagsight judge report' draws it).")
    ad.add_argument("samples", type=SAMPLES, nargs="+", metavar="SAMPLES_DIR",
                    help="folders written by 'tagsight generate --out DIR', one prompt per concept (local or fsspec "
                         "URLs)")
    ad.add_argument("--real", type=photos_input, metavar="REAL_DIR",
                    help="class folders of real photos named by WordNet id or synset name "
                         "(e.g. ../shared/data/imagenette-160/val); without it only accuracy and chance")
    ad.add_argument("--out", type=dataset_path, required=True, metavar="STUDY",
                    help="study folder to write, local or an fsspec URL (published adherence.json last)")
    ad.add_argument("--judge", type=dataset_path, metavar="RUN_DIR",
                    help="a tagsight hashtag pretraining run (local or an fsspec URL) that names the concepts instead "
                         "of the packaged Lite0, e.g. one trained on real photos at the samples' resolution; its "
                         "vocabulary must hold the prompts' labels")
    ad.add_argument("--real-per-concept", type=int, default=100, help="real photos per concept, 0 = all (default 100)")
    ad.add_argument("--no-frechet", action="store_true", help="skip the Frechet distance")
    ad.add_argument("--resamples", type=int, default=200, help="bootstrap resamples of the distance (default 200)")
    ad.add_argument("--seed", type=int, default=0, help="seed of the real-photo draw and the bootstrap")
    add_json_option(ad)
    ad.set_defaults(func=_guarded("adherence", run_adherence))


def _dirs(p: argparse.ArgumentParser) -> None:
    p.add_argument("before", type=SAMPLES, metavar="BEFORE_DIR", help="samples of the base model (local or an fsspec "
                   "URL)")
    p.add_argument("after", type=SAMPLES, metavar="AFTER_DIR", help="samples of the quality-tuned model (local or an "
                   "fsspec URL)")
    p.add_argument("--out", type=dataset_path, required=True, metavar="STUDY", help="study folder to write, local or "
                   "an fsspec URL (published with the verb's record last)")


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
    with output_folder(args.out, marker="aesthetic.json") as out:
        result = aesthetic_study(args.before, args.after, out, cfg)
    shown = {**{k: result[k] for k in ("scorer", "pairs", "prompts", "aesthetic")},
             "measures": {m: {k: v[k] for k in ("before", "after", "mean_diff", "ci95")}
                          for m, v in result["measures"].items()}}
    emit(args, shown, lambda: format_fields(shown))
    return 0


def run_judge(run_dir: str | Path, batch_size: int) -> RunJudge:
    """The hashtag model of a pretraining run as an adherence judge (``RunJudge``)."""
    from tagsight.apps.run import load_run
    from tagsight.curate.judge.adherence import RunJudge

    run = load_run(local_folder(run_dir, marker="run.json"))
    labels = [label.label for label in run.vocab().labels]
    return RunJudge(run.backbone, run.head, labels, location(run_dir), batch_size)


def run_adherence(args: argparse.Namespace) -> int:
    from tagsight.curate.judge.adherence import AdherenceConfig, adherence_study

    cfg = AdherenceConfig(args.real_per_concept, not args.no_frechet, args.resamples, seed=args.seed)
    judge = run_judge(args.judge, cfg.batch_size) if args.judge is not None else None
    with output_folder(args.out, marker="adherence.json") as out:
        result = adherence_study(args.samples, args.real, out, cfg, judge)
    real = result["real"]
    rows = [{"set": s["name"], "accuracy": s["accuracy"], "ci95": s["ci95"], "chance": result["chance"],
             "real_accuracy": real["accuracy"] if real else None,
             "prompts_above_chance": s["prompts_above_chance"], "prompts_half_of_real": s["prompts_half_of_real"],
             "frechet": s.get("frechet")} for s in result["sets"]]
    summary = {"concepts": len(result["concepts"]), "sets": rows,
               "real_floor": (result["frechet"] or {}).get("real_floor")}
    emit(args, summary, lambda: "\n".join(
        [f"{len(result['concepts'])} concepts, chance {result['chance']:.3f}"
         + (f", real photos {real['accuracy']:.3f}" if real else "")]
        + [f"{r['set']}: accuracy {r['accuracy']:.3f} (95% {r['ci95'][0]:.3f}-{r['ci95'][1]:.3f}), "
           f"{r['prompts_above_chance']} prompts above chance, {r['prompts_half_of_real']} at half of real"
           + (f", Frechet {r['frechet']['distance']:.1f}" if isinstance(r.get("frechet"), dict) and "distance" in r["frechet"] else "")
           for r in rows] + [f"written to {args.out}"]))
    return 0


def run_conditioning(args: argparse.Namespace) -> int:
    from tagsight.generate.measure import measure_conditioning
    from tagsight.storage import write_text

    run = local_folder(args.run, marker="run.json")   # a URL: mirrored; the result names it by its URL
    result = measure_conditioning(run, args.dataset, args.checkpoint, args.repeats, args.max_samples)
    result.update(run=location(run), dataset=location(args.dataset))
    if args.out:
        write_text(args.out, json.dumps(result, indent=1))
    emit(args, result, lambda: format_fields(result))
    return 0


def run_merge(args: argparse.Namespace) -> int:
    from tagsight.curate.judge.pairs import PairStudy
    from tagsight.curate.judge.votes import merge_votes

    sources = [local_input(s) for s in args.sources]   # copies or votes files at URLs: copied into the cache
    with shared_folder(args.study, "pairs.json", VOTES) as study:
        PairStudy.load(study)
        merged = merge_votes(study, sources)
    given = {str(local): str(source) for local, source in zip(sources, args.sources)}
    merged["sources"] = {given.get(k, k): v for k, v in merged["sources"].items()}   # named as given: URLs
    emit(args, merged, lambda: format_fields(merged))
    return 0


def run_pairs(args: argparse.Namespace) -> int:
    from tagsight.curate.judge.pairs import make_pair_study

    with output_folder(args.out, marker="pairs.json") as out:
        summary = make_pair_study(args.before, args.after, out, args.seed)
    summary["study"] = str(args.out)
    emit(args, summary, lambda: format_fields(summary))
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from tagsight.curate.judge.queue import VoteQueue

    try:
        with shared_folder(args.study, "pairs.json", VOTES) as study:   # a URL: votes published when it stops
            queue = VoteQueue(study)
            import uvicorn

            from tagsight.curate.judge.app import create_judge_app

            print(f"rating page: http://{args.host}:{args.port}/?rater=YOUR_NAME", file=sys.stderr)
            uvicorn.run(create_judge_app(queue), host=args.host, port=args.port, log_level="warning")
    except ERRORS as exc:
        return _fail("serve", exc)
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from tagsight.curate.judge.preference import preference_stats

    with shared_folder(args.study, "pairs.json", VOTES) as study:   # STUDY/preference.json published back
        result = preference_stats(study)
    shown = {k: v for k, v in result.items() if k not in ("before", "after")}
    emit(args, shown, lambda: format_fields(shown))
    return 0


def run_report(args: argparse.Namespace) -> int:
    from tagsight.report.judge import write_judge_report

    study = local_folder(args.study)
    out = args.out or (f"{args.study}/report.html" if isinstance(args.study, str) else args.study / "report.html")
    print(write_judge_report(study, out))
    return 0
