"""How well each open-set score separates in-vocabulary photos from pictures of nothing (AUROC), for a run.

In-vocabulary photos: the check half (seeded post hash, as calibration splits) of a calibration
dataset; the ``knn`` bank is its fit half. Pictures of nothing: ``--rendered`` pictures
(``tagsight.datasets.synthetic.render_unseen``), reported overall and per kind::

    python3 bench/apps/open_set_auroc.py demo/run --dataset demo/calibration/dataset
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from tagsight.apps.calibration import CHECK_PURPOSE, rendered_unseen
from tagsight.data.index import unit_hash
from tagsight.apps.embedder import Embedder, embed_samples
from tagsight.apps.openset import knn_scores, open_set_scores
from tagsight.apps.run import load_run
from tagsight.data.index import SampleIndex


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of an in-vocabulary photo > score of a picture of nothing), ties counted half."""
    s = np.r_[pos, neg]
    ranks = np.empty(len(s))
    order = np.argsort(s, kind="stable")
    ranks[order] = np.arange(1, len(s) + 1)
    for value in np.unique(s):   # average ranks of ties
        tied = s == value
        ranks[tied] = ranks[tied].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--dataset", required=True)
    p.add_argument("--rendered", type=int, default=120)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    run = load_run(args.run)
    embedder = Embedder(run.backbone)
    index = SampleIndex.build(args.dataset)
    features = embed_samples(index, np.arange(len(index)), embedder, "in-vocabulary")
    check = np.asarray([unit_hash(k, args.seed, CHECK_PURPOSE) < 0.5 for k in index.post_keys])
    names, images = rendered_unseen(args.rendered, args.seed)
    kinds = np.asarray([n.rsplit("-", 1)[-1] for n in names])
    out_features = embedder.embed(images)
    with torch.no_grad():
        z_in = run.head(torch.from_numpy(features[check])).double().numpy()
        z_out = run.head(torch.from_numpy(out_features)).double().numpy()
    scores = {name: (open_set_scores(z_in, name), open_set_scores(z_out, name)) for name in ("max_logit", "energy")}
    scores["knn"] = (knn_scores(features[check], features[~check]), knn_scores(out_features, features[~check]))
    result = {name: {"all": round(auroc(a, b), 3), **{k: round(auroc(a, b[kinds == k]), 3) for k in sorted(set(kinds))}}
              for name, (a, b) in scores.items()}
    print(json.dumps({"in_vocabulary": int(check.sum()), "bank": int((~check).sum()), "unseen": len(names),
                      "auroc": result}, indent=1))


if __name__ == "__main__":
    main()
