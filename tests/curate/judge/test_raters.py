"""Several raters: votes merged from copies of a study, Fleiss' kappa and the pooled win rate on synthetic votes."""

import json
import shutil

import pytest

from tagsight.cli import main
from tagsight.curate.judge.pairs import PairStudy, make_pair_study
from tagsight.curate.judge.preference import preference_stats
from tagsight.curate.judge.stats import fleiss_kappa
from tagsight.curate.judge.votes import append_votes, latest_votes, merge_votes
from tagsight.fsio import ReasonError

from .test_preference import shown_side

# Three synthetic raters (not people) on the six pairs of the study; cy judges only the first four.
VOTES = {"ann": ["after", "before", "after", "tie", "after", "before"],
         "bob": ["after", "before", "after", "before", "after", "after"],
         "cy": ["after", "before", "before", "after"]}
# Fleiss by hand on the four pairs all three judged: items (AAA) (BBB) (AAB) (TBA), n = 3
# P_i = 1, 1, 1/3, 0 -> P = 7/12; p_after 6/12, p_before 5/12, p_tie 1/12 -> P_e = 31/72; kappa = 11/41
FLEISS = 11 / 41


def test_fleiss_kappa_by_hand_and_its_edges():
    assert fleiss_kappa([list(x) for x in ("AAA", "BBB", "AAB", "TBA")]) == pytest.approx(FLEISS)
    assert fleiss_kappa([["a", "a"], ["b", "b"]]) == pytest.approx(1.0)
    assert fleiss_kappa([["a", "a"], ["a", "a"]]) != fleiss_kappa([["a", "a"], ["a", "a"]])      # nan: no chance term
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([["a", "b"], ["a"]])


@pytest.fixture
def rated(before_after, tmp_path):
    """The study rated by ann and bob on one server and by cy on a copy of the folder elsewhere."""
    study = tmp_path / "study"
    make_pair_study(*before_after, study, seed=2)
    copy = tmp_path / "copy"
    shutil.copytree(study, copy)
    s = PairStudy.load(study)
    pairs, left = [p["pair"] for p in s.pairs], {k: v["left"] for k, v in s.unblind()["pairs"].items()}
    for rater, outcomes in VOTES.items():
        append_votes(copy if rater == "cy" else study,
                     [{"rater": rater, "pair": p, "choice": shown_side(o, left[p])} for p, o in zip(pairs, outcomes)])
    return study, copy


def test_merged_votes_give_per_rater_pooled_and_agreement_figures(rated):
    study, copy = rated
    merged = merge_votes(study, [copy])
    assert merged["added"] == 4 and merged["raters"] == ["ann", "bob", "cy"]
    assert merge_votes(study, [copy])["added"] == 0                      # merging again adds nothing
    r = preference_stats(study)
    assert r["rater_count"] == 3 and r["counted"] == 16
    assert r["per_rater"]["cy"]["votes"] == 4 and r["per_rater"]["cy"]["win_rate"] == pytest.approx(2 / 4)
    ag = r["agreement"]
    assert ag["fleiss_pairs"] == 4 and ag["fleiss_kappa"] == pytest.approx(FLEISS)
    pooled = r["pooled"]
    # after wins per pair 3, 0, 2, 1, 2, 1 of decisive 3, 3, 3, 2, 2, 2
    assert pooled["decisive_votes"] == 15 and pooled["win_rate"] == pytest.approx(9 / 15)
    lo, hi = pooled["win_rate_ci95_pairs_bootstrap"]
    assert 0.0 <= lo < 9 / 15 < hi <= 1.0
    assert r["overall"]["win_rate"] == pytest.approx(9 / 15)


def test_merge_refuses_another_study_and_unknown_pairs(rated, before_after, tmp_path):
    study, copy = rated
    other = tmp_path / "other"
    make_pair_study(*before_after, other, seed=3)
    with pytest.raises(ReasonError) as exc:
        merge_votes(study, [other])
    assert exc.value.reason == "different_study"
    append_votes(other, [{"rater": "dee", "pair": PairStudy.load(other).pairs[0]["pair"], "choice": "left"}])
    with pytest.raises(ReasonError) as exc:
        merge_votes(study, [copy, other / "votes.parquet"])
    assert exc.value.reason == "unknown_pair"
    assert merge_votes(study, [])["added"] == 0                          # nothing was added by the refused merge
    with pytest.raises(ReasonError) as exc:
        merge_votes(study, [study])
    assert exc.value.reason == "same_study"


def test_the_latest_vote_by_time_counts_whatever_the_row_order():
    rows = [{"rater": "ann", "pair": "p", "choice": "left", "at": "2026-01-02T00:00:00.000+00:00"},
            {"rater": "ann", "pair": "p", "choice": "right", "at": "2026-01-01T00:00:00.000+00:00"}]
    assert latest_votes(rows) == {("p", "ann"): "left"}


def test_cli_merge_then_stats(rated, capsys):
    study, copy = rated
    assert main(["judge", "merge", str(study), str(copy), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 4
    assert main(["judge", "merge", str(study), str(study.parent / "missing")]) == 2
    assert "no_votes" in capsys.readouterr().err
    assert main(["judge", "stats", str(study), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["raters"] == ["ann", "bob", "cy"] and stats["agreement"]["fleiss_kappa"] == pytest.approx(FLEISS)


def test_the_report_shows_every_rater_and_fleiss_kappa(rated, tmp_path):
    from tagsight.report.judge import write_judge_report

    study, copy = rated
    merge_votes(study, [copy])
    html = write_judge_report(study, tmp_path / "r.html").read_text()
    assert "rater cy" in html and f"{FLEISS:.3f} over 4 pairs" in html and "pairs resampled" in html
