import json

import numpy as np
import pyarrow as pa
import pytest

from tagsight.fsio import ReasonError
from tagsight.relevance.truth import (
    evaluate_truth,
    flag_metrics,
    load_truth,
    pair_kinds,
    ranking_summary,
    visualness_ranking,
)


def pairs_table(rows):
    return pa.Table.from_pylist([{"post_key": p, "label": l, "hashtags": t, "score": s} for p, l, t, s in rows])


TRUTH = {"1": {"dog": "true_concept", "Dogs": "true_concept", "car": "wrong_concept", "love": "nonvisual_noise"},
         "2": {"car": "true_concept", "ball": "nonvisual_noise"}}


def test_pair_kind_prefers_true_then_wrong():
    table = pairs_table([("s/1", 0, ["dog", "Dogs"], 0.9), ("s/1", 1, ["car"], 0.1), ("s/1", 2, ["love"], 0.2),
                         ("s/2", 1, ["car"], 0.8), ("s/2", 3, ["ball"], 0.05)])
    assert pair_kinds(table, TRUTH).tolist() == ["true_concept", "wrong_concept", "nonvisual_noise",
                                                 "true_concept", "nonvisual_noise"]
    with pytest.raises(ReasonError) as err:
        pair_kinds(pairs_table([("s/9", 0, ["dog"], 0.5)]), TRUTH)
    assert err.value.reason == "truth_mismatch"


def test_flag_metrics_by_hand():
    scores = np.array([0.01, 0.02, 0.5, 0.9, 0.03])
    bad = np.array([True, False, True, False, True])
    m = flag_metrics(scores, bad, 0.04)
    assert (m["flagged"], m["hits"], m["true_pairs_lost"]) == (3, 2, 1)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert np.isnan(flag_metrics(scores, bad, 0.0)["precision"])


def test_ranking_and_its_summary():
    labels = [{"index": 0, "label": "dog", "visualness": 0.9, "support": 3},
              {"index": 1, "label": "car", "visualness": 0.5, "support": 3},
              {"index": 2, "label": "love", "visualness": 0.6, "support": 3},
              {"index": 3, "label": "ball", "visualness": 0.1, "support": 3},
              {"index": 4, "label": "none", "visualness": None, "support": 0}]
    table = pairs_table([("s/1", 0, ["dog"], 0.9), ("s/1", 1, ["car"], 0.1), ("s/2", 1, ["car"], 0.8),
                         ("s/1", 2, ["love"], 0.2), ("s/2", 3, ["ball"], 0.05)])
    ranking = visualness_ranking(labels, table, pair_kinds(table, TRUTH))
    assert [(r["label"], r["rank"]) for r in ranking] == [("dog", 1), ("love", 2), ("car", 3), ("ball", 4)]
    s = ranking_summary(ranking)
    assert s["noise_labels"] == 2 and s["concept_labels"] == 2
    assert s["concept_above_noise_auc"] == pytest.approx(3 / 4)  # dog (1) above love (2) and ball (4); car (3) above ball only
    assert s["noise_median_rank"] == 3.0 and s["best_noise_rank"] == 2


def test_load_truth_errors(tmp_path):
    with pytest.raises(ReasonError) as err:
        load_truth(tmp_path / "missing.jsonl")
    assert err.value.reason == "truth_missing"
    (tmp_path / "t.jsonl").write_text(json.dumps({"post_id": "1"}) + "\n")
    with pytest.raises(ReasonError) as err:
        load_truth(tmp_path / "t.jsonl")
    assert err.value.reason == "truth_invalid"


def test_on_the_colour_dataset(colour_dataset, colour_features):
    from tagsight.relevance.score import ScoreConfig, label_table, pair_rows, score_dataset

    scores = score_dataset(colour_dataset["dataset"], colour_dataset["vocab"],
                           ScoreConfig(folds=3, epochs=40, lr=0.05), features=colour_features)
    result = evaluate_truth(pa.Table.from_pydict(pair_rows(scores)), label_table(scores),
                            load_truth(colour_dataset["truth"]), thresholds=(0.3,))
    assert result["flag_ap"] > result["flag_chance"] + 0.2
    assert result["ranking_summary"]["concept_above_noise_auc"] == 1.0
    assert sum(v["pairs"] for v in result["by_kind"].values()) == result["pairs"]
    assert result["by_kind"]["unknown"]["pairs"] == 0
    ball = next(r for r in label_table(scores) if r["label"] == "ball.n.01")["visualness"]
    policy = evaluate_truth(pa.Table.from_pydict(pair_rows(scores)), label_table(scores),
                            load_truth(colour_dataset["truth"]), thresholds=(0.3,), label_thresholds=(ball + 1e-6,))
    row = policy["label_policy"][0]
    assert row["flagged"] == result["by_kind"]["nonvisual_noise"]["pairs"] and row["precision"] == 1.0
