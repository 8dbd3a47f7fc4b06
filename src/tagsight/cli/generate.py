"""``tagsight generate RUN --prompt TEXT --out DIR``: sample images from a generator run; ``tagsight generate tune``: quality-tune one."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from tagsight.cli.options import (add_config_options, add_deprecated, add_json_option, emit, format_fields,
                                  input_file)
from tagsight.storage import dataset_path, local_folder, output_folder


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "generate", help="sample images from a hashtag-conditioned generator (or quality-tune one: 'generate tune')",
        description="Write N images per prompt to OUT (0000.png ..., grid.png, samples.jsonl: file, prompt, tokens "
                    "used and unknown, seed, steps, guidance, model run/step/kind, size). Image j of a prompt uses "
                    "seed SEED + j, so two models given the same prompts and seed are paired image by image. "
                    "Train a generator with 'tagsight pretrain --objective diffusion'.")
    add_deprecated(p, "--model", "generate RUN", dest="run", type=dataset_path)
    prompt = p.add_mutually_exclusive_group()
    prompt.add_argument("--prompt", help='hashtags and/or words, e.g. "#beach #sunset"')
    prompt.add_argument("--prompts", type=input_file, help="a file with one prompt per line (local or an fsspec URL)")
    p.add_argument("--n", type=int, default=8, help="images per prompt (default 8)")
    p.add_argument("--out", type=dataset_path, help="folder of images to write (created), local or an fsspec URL "
                   "(written here, published samples.jsonl and lineage.json last)")
    p.add_argument("--seed", type=int, default=0, help="noise seed: image j of each prompt uses SEED + j (default 0)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model config's)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale, 1 = none "
                   "(default: the model config's)")
    p.add_argument("--sampler", choices=("ddim", "dpm"), default=None, help="default: the model config's")
    p.add_argument("--checkpoint", default="auto", help="auto (tuned run: its early-stopping best; else latest), "
                   "latest, best or a checkpoint folder name")
    p.add_argument("--batch-size", type=int, default=16, help="samples generated at once (default 16)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    add_json_option(p)
    p.set_defaults(func=run, run=None)
    verbs = p.add_subparsers(dest="generate_verb", metavar="RUN | tune", action=_RunOrVerb,
                             help="RUN: a generator run folder (pretrain) or a tuned one (generate tune) to sample "
                                  "from; tune: quality-tune a generator")
    t = verbs.add_parser(
        "tune", help="quality-tune a generator on a curated dataset (small batches, low lr, early stopping)",
        description="Start from RUN's weights (its EMA), train on CURATED (any dataset version, e.g. one written by "
                    "'tagsight curate export') with the shared Trainer, evaluate the held-out denoising loss of "
                    "CURATED's held-out posts with fixed noise every eval_every steps and stop when it has not "
                    "improved for 'patience' evaluations; the best weights are OUT/checkpoints/best. Rerun the same "
                    "command to resume.")
    t.add_argument("run", type=dataset_path, help="the generator run to start from (local or an fsspec URL)")
    t.add_argument("curated", type=dataset_path, help="the curated dataset (local or an fsspec URL)")
    t.add_argument("--out", dest="tune_out", type=dataset_path, required=True,
                   help="the tuned run folder, local or an fsspec URL (tuned in a local staging folder, each "
                        "checkpoint published as it is saved, run.json last)")
    add_config_options(t, "TuneConfig", "max_steps=200", "configs/tune_diffusion_cpu_32.yaml")
    t.add_argument("--device", dest="tune_device", default="auto", help="auto (CUDA when present), cpu or cuda")
    add_json_option(t)
    t.set_defaults(func=run_tune)


if TYPE_CHECKING:
    _SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:   # not subscriptable at run time
    _SubParsers = argparse._SubParsersAction


class _RunOrVerb(_SubParsers):
    """``generate RUN [options]`` samples; ``generate tune ...`` is the sub-verb. A first word that is no
    sub-verb is the RUN, and the words after it are parsed as the sampling options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.choices = _AnyWord(self._name_parser_map)  # type: ignore[assignment]  # typeshed: a dict; argparse only tests `in`

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if values[0] in self._name_parser_map:
            return super().__call__(parser, namespace, values, option_string)
        namespace.run = dataset_path(values[0])
        _, extras = parser.parse_known_args(values[1:], namespace)
        if extras:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")


class _AnyWord(Mapping[str, argparse.ArgumentParser]):
    """The sub-verbs, as argparse's choices: every word is accepted (one that is no sub-verb is the RUN)."""

    def __init__(self, verbs: dict[str, argparse.ArgumentParser]) -> None:
        self.verbs = verbs

    def __getitem__(self, name: str) -> argparse.ArgumentParser:
        return self.verbs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.verbs)

    def __len__(self) -> int:
        return len(self.verbs)

    def __contains__(self, name: object) -> bool:
        return True


def _device(name: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name


def run(args: argparse.Namespace) -> int:
    from tagsight.fsio import ReasonError
    from tagsight.generate.runs import load_generator
    from tagsight.generate.sample import SAMPLES_FILE, SampleSettings, read_prompts, write_samples
    from tagsight.lineage import LINEAGE_FILE

    if args.run is None or args.out is None or (args.prompt is None and args.prompts is None):
        print("tagsight generate: give RUN, --prompt TEXT (or --prompts FILE) and --out DIR "
              "(or 'tagsight generate tune ...')", file=sys.stderr)
        return 2
    try:
        prompts = read_prompts(args.prompts) if args.prompts else [args.prompt]
        gen = load_generator(local_folder(args.run, marker="run.json"), args.checkpoint, _device(args.device))
        d = gen.cfg.objective.diffusion
        settings = SampleSettings(args.steps or d.steps, d.guidance if args.guidance is None else args.guidance,
                                  args.sampler or d.sampler, args.batch_size)
        with output_folder(args.out, marker=(SAMPLES_FILE, LINEAGE_FILE)) as out:   # a URL: published after
            rows = write_samples(gen, prompts, args.n, out, args.seed, settings)
    except (ReasonError, ValueError, FileNotFoundError) as exc:
        print(f"tagsight generate: {exc}", file=sys.stderr)
        return 2
    result = {"out": str(args.out), "images": len(rows), "prompts": len(prompts), "model": rows[0]["model"],
              "unknown_tokens": sorted({t for r in rows for t in r["tokens_unknown"]})}
    emit(args, result, lambda: format_fields(result))
    return 0


def run_tune(args: argparse.Namespace) -> int:
    from tagsight.cli.pretrain import in_run_folder, run_on_ranks
    from tagsight.generate.tune import TuneConfig, tune

    try:
        cfg = TuneConfig.from_yaml(args.config, args.overrides)
    except (OSError, ValueError, TypeError) as exc:
        print(f"tagsight generate tune: bad config: {exc}", file=sys.stderr)
        return 2

    def work(env: Any) -> dict[str, Any]:
        base = local_folder(args.run, marker="run.json")   # URLs: mirrored (the dataset's shards too)
        curated = local_folder(args.curated, marker="manifest.json")
        return in_run_folder(args.tune_out, env, lambda out: tune(base, curated, out, cfg, env))

    return run_on_ranks("generate tune", args.tune_device, work, args)
