"""``tagsight index build DATASET --backbone SPEC --out INDEX_DIR`` and ``tagsight index remove INDEX_DIR POST_KEY...``."""

from __future__ import annotations

import argparse

from tagsight.cli.engine import add_engine_options, engine_config
from tagsight.cli.eval import BACKBONE_HELP
from tagsight.cli.options import add_json_option, dataset_input, emit, fail, format_fields
from tagsight.storage import dataset_path, output_folder


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("index", help="similar-image search: build a faiss index over a dataset, remove posts",
                       description="The index of a bundle lives in BUNDLE/index/ (docs/apps.md); tombstoned posts "
                                   "are left out at build time and filtered at query time.")
    verbs = p.add_subparsers(dest="index_verb", metavar="ACTION", required=True)
    b = verbs.add_parser("build", help="embed every sample of a dataset into a nearest-neighbour index")
    b.add_argument("dataset", type=dataset_input, help="an ingested dataset folder (or its fsspec URL)")
    b.add_argument("--backbone", required=True, help=BACKBONE_HELP + "; or a bundle folder")
    b.add_argument("--out", type=dataset_path, required=True,
                   help="index folder (e.g. BUNDLE/index), local or an fsspec URL (built here, published index.json last)")
    b.add_argument("--batch-size", type=int, default=64, help="photos embedded per batch (default 64)")
    b.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    add_engine_options(b, "the embeddings, by blocks of whole batches", "in this process")
    add_json_option(b)
    b.set_defaults(func=run)
    r = verbs.add_parser("remove", help="delete every sample of the given posts (source/post_id) from an index")
    r.add_argument("index_dir", type=dataset_path, help="index folder made by 'tagsight index build' (local or an "
                   "fsspec URL: changed in a local copy, published back index.json last)")
    r.add_argument("post_keys", nargs="+", help="post keys (source/post_id) to remove from it")
    r.add_argument("--backbone", required=True, help="the backbone the index was built with (or its bundle)")
    add_json_option(r)
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tagsight.apps.embedder import Embedder
    from tagsight.apps.similar import INDEX_JSON, SimilarApp, build_index
    from tagsight.cli.heads import resolve_backbone
    from tagsight.engines import EngineError, create_engine
    from tagsight.fsio import ReasonError

    try:
        backbone, spec = resolve_backbone(args.backbone)
        if args.index_verb == "build":
            embedder = Embedder(backbone, args.device, args.batch_size)
            with output_folder(args.out, marker=INDEX_JSON) as out:   # a URL: built here, then published
                if args.engine == "local":
                    result = build_index(args.dataset, embedder, out, spec)
                else:
                    with create_engine(engine_config(args)) as engine:
                        result = build_index(args.dataset, embedder, out, spec, engine)
        else:
            with output_folder(args.index_dir, marker=INDEX_JSON) as index_dir:
                app = SimilarApp(Embedder(backbone), index_dir)
                result = {"removed_samples": app.remove(args.post_keys), "indexed": len(app)}
    except (ReasonError, FileNotFoundError, ValueError, EngineError) as exc:
        return fail(f"index {args.index_verb}", exc)
    emit(args, result, lambda: format_fields(result))
    return 0
