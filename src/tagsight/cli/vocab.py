"""``tagsight vocab build INPUT --out VOCAB_DIR`` and ``tagsight vocab show VOCAB``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tagsight.cli.options import add_config_options, add_json_option, emit, given, resolve_config, show_usage
from tagsight.storage import dataset_path, local_folder, output_folder

if TYPE_CHECKING:
    from tagsight.ingest.sources import Source
    from tagsight.tags.config import VocabConfig
    from tagsight.tags.vocab import Vocabulary

log = logging.getLogger(__name__)

FORMATS = ("auto", "dataset", "tagsonly")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("vocab", help="build and inspect hashtag vocabularies (WordNet noun synsets as labels)")
    verbs = p.add_subparsers(dest="vocab_verb", metavar="ACTION")
    _register_build(verbs)
    _register_show(verbs)
    p.set_defaults(func=show_usage(p))


def _register_build(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    b = verbs.add_parser(
        "build", help="build a vocabulary from a dataset or a tags-only corpus",
        description="Normalise, segment and map the hashtags of INPUT to WordNet noun synsets, drop the "
                    "non-visual ones, keep the top K, and write VOCAB_DIR/vocab.json and an HTML report. "
                    "A dataset (made by 'tagsight ingest') contributes only the posts the consent policy kept.")
    b.add_argument("input", type=dataset_path, help="a dataset folder (made by 'tagsight ingest', local or an fsspec URL) or a tags-only corpus "
                   "(a folder with tag_list.txt, HARRISON layout, or a .txt file, one post per line)")
    b.add_argument("--out", type=dataset_path, required=True, help="folder to write vocab.json into (created if missing; or an fsspec URL)")
    b.add_argument("--format", choices=FORMATS, default="auto", help="dataset or tagsonly; auto: dataset when "
                   "INPUT/manifest.json exists, else tagsonly (default: auto)")
    add_config_options(b, "VocabConfig", "min_count=10", "configs/vocab_default.yaml")
    b.add_argument("--top-k", type=int, help="keep the K most frequent labels; 0 = no limit (default 1500)")
    b.add_argument("--min-count", type=int, help="fewest posts a label needs (default 5)")
    b.add_argument("--rollup-depth", type=int, help="map labels to their hypernym at this depth below "
                   "entity.n.01; -1 = no roll-up (default: none)")
    b.add_argument("--sampling", choices=("sqrt", "inverse", "none"), help="default sampling mode recorded "
                   "in the vocabulary (default sqrt)")
    b.add_argument("--report", type=dataset_path, help="HTML report path or fsspec URL (default VOCAB_DIR/report.html)")
    add_json_option(b)
    b.set_defaults(func=run_build)


def _register_show(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = verbs.add_parser("show", help="print a short summary and the most frequent labels of a vocabulary")
    s.add_argument("vocab", type=dataset_path, help="a vocab.json or the folder holding it, local or an fsspec URL")
    s.add_argument("--top", type=int, default=20, help="labels to list (default 20)")
    add_json_option(s)
    s.set_defaults(func=run_show)


def build_config(args: argparse.Namespace) -> VocabConfig:
    """The VocabConfig: defaults, then --config YAML, then the command-line options, then --set."""
    from tagsight.config import load_config
    from tagsight.tags.config import VocabConfig

    flags = given(min_count=args.min_count, sampling=args.sampling)
    if args.top_k is not None:
        flags["top_k"] = args.top_k or None
    if args.rollup_depth is not None:
        flags["rollup_depth"] = None if args.rollup_depth < 0 else args.rollup_depth
    return resolve_config(lambda path, sets: load_config(VocabConfig, path, sets), args, flags)


def resolve_format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    return "dataset" if (path / "manifest.json").is_file() else "tagsonly"


def open_posts(path: Path, fmt: str) -> tuple[Iterator[tuple[str, list[str]]], dict[str, Any]]:
    """(post key, hashtags) pairs of INPUT, and the input's identity (filled as the pairs are read)."""
    if fmt == "dataset":
        from tagsight.schema.catalog import iter_kept_hashtags, manifest_version

        return iter_kept_hashtags(path), {"kind": "dataset", "manifest_version": manifest_version(path)}
    from tagsight.ingest.sources import open_source

    source = open_source(path, "tagsonly")
    identity = {"kind": "tagsonly", "rejected": 0}
    return _tagsonly_posts(source, identity), identity


def _tagsonly_posts(source: Source, identity: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    from tagsight.ingest.sources import Rejected

    for item in source:
        if isinstance(item, Rejected):
            identity["rejected"] += 1
            log.warning("skipped %s: %s (%s)", item.ref, item.reason, item.detail)
            continue
        yield item.key, list(item.hashtags)


def run_build(args: argparse.Namespace) -> int:
    from tagsight.ingest.sources import SourceError
    from tagsight.progress import track
    from tagsight.tags.vocab import build_vocab
    from tagsight.tags.wordnet import WordNetMissing

    try:
        source = local_folder(args.input, metadata_only=True)   # a dataset URL: its catalog, not its shards
        if not source.exists():
            raise FileNotFoundError(f"{args.input} does not exist")
        cfg = build_config(args)
        posts, identity = open_posts(source, resolve_format(source, args.format))
        vocab = build_vocab(track(posts, None, "vocab: reading posts", "post"), cfg, source=identity)
    except (SourceError, WordNetMissing, ValueError, OSError, KeyError) as exc:
        print(f"tagsight vocab build: {exc}", file=sys.stderr)
        return 2
    return _write_outputs(vocab, args)


def _write_outputs(vocab: Vocabulary, args: argparse.Namespace) -> int:
    from tagsight.report.vocab import write_vocab_report

    with output_folder(args.out, marker="vocab.json") as out:   # a URL: written here, then published
        path = vocab.save(out)
        report = write_vocab_report(vocab, args.report or out / "report.html")
    c = vocab.coverage
    if vocab.input.get("rejected"):
        print(f"{vocab.input['rejected']} input records were rejected (see the warnings above)", file=sys.stderr)
    result = {"version": vocab.version, "labels": len(vocab), "coverage": c, "input": vocab.input,
              "vocab": str(path), "report": str(report)}
    emit(args, result, f"vocabulary {vocab.version}: {len(vocab)} labels, {c['distinct_tags_kept']} of "
                       f"{c['distinct_tags']} hashtags kept, coverage {100 * c['coverage']:.1f}% of {c['posts']:,} "
                       f"posts\n  {path}\n  {report}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from tagsight.tags.vocab import Vocabulary, format_vocab

    try:
        vocab = Vocabulary.load(args.vocab)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"tagsight vocab show: {exc}", file=sys.stderr)
        return 2
    emit(args, {"version": vocab.version, "labels": len(vocab), "coverage": vocab.coverage,
                "drops": vocab.drop_summary(),
                "top": [{"label": lb.label, "wnid": lb.wnid, "posts": lb.posts, "members": lb.members}
                        for lb in vocab.labels[:args.top]]},
         lambda: format_vocab(vocab, args.top))
    return 0
