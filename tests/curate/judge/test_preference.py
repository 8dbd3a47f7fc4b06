import json

import pytest

from tagsight.curate.judge.pairs import PairStudy, make_pair_study
from tagsight.curate.judge.preference import preference_stats, tally
from tagsight.curate.judge.stats import sign_test, wilson_interval
from tagsight.curate.judge.votes import append_votes, latest_votes, read_votes
from tagsight.fsio import ReasonError


def shown_side(model, left):
    if model == "tie":
        return "none"
    return "left" if model == left else "right"


@pytest.fixture
def study(before_after, tmp_path):
    make_pair_study(*before_after, tmp_path / "study", seed=1)
    s = PairStudy.load(tmp_path / "study")
    return s, [p["pair"] for p in s.pairs], {k: v["left"] for k, v in s.unblind()["pairs"].items()}


def cast(study_dir, rater, outcomes, pairs, left):
    append_votes(study_dir, [{"rater": rater, "pair": p, "choice": shown_side(o, left[p])} for p, o in zip(pairs, outcomes)])


def test_known_votes_give_known_win_rates_intervals_and_agreement(study):
    s, pairs, left = study
    ann = ["after", "after", "after", "after", "before", "tie"]
    bob = ["after", "after", "before", "before", "before", "after"]
    cast(s.dir, "ann", ann, pairs, left)
    cast(s.dir, "bob", bob, pairs, left)
    r = preference_stats(s.dir)
    assert json.loads((s.dir / "preference.json").read_text())["overall"] == r["overall"]
    o = r["overall"]
    assert (o["votes"], o["after"], o["before"], o["ties"]) == (12, 7, 4, 1)
    assert o["win_rate"] == pytest.approx(7 / 11) and o["win_rate_ties_half"] == pytest.approx(7.5 / 12)
    assert o["win_rate_ci95"] == pytest.approx(list(wilson_interval(7, 11)))
    assert o["win_rate_ties_half_ci95"] == pytest.approx(list(wilson_interval(7.5, 12)))
    assert o["sign_test_p"] == pytest.approx(sign_test(7, 4))
    assert r["per_rater"]["ann"]["win_rate"] == pytest.approx(4 / 5) and r["per_rater"]["bob"]["win_rate"] == 0.5
    ag = r["agreement"]
    assert ag["shared_judgements"] == 6 and ag["percent_agreement"] == pytest.approx(3 / 6)
    # kappa by hand: observed 1/2; ann after 4/6 before 1/6 tie 1/6; bob after 3/6 before 3/6
    chance = (4 / 6) * (3 / 6) + (1 / 6) * (3 / 6)
    assert ag["cohen_kappa"] == pytest.approx((0.5 - chance) / (1 - chance))
    sides = [shown_side(o, left[p]) for who in (ann, bob) for p, o in zip(pairs, who)]
    assert r["side_bias"]["left"] == sides.count("left") and r["side_bias"]["none"] == 1
    assert r["side_bias"]["left_share"] == pytest.approx(sides.count("left") / 11)


def test_latest_vote_counts_undo_removes_it_history_is_kept(study):
    s, pairs, left = study
    cast(s.dir, "ann", ["before"], pairs, left)
    cast(s.dir, "ann", ["after"], pairs, left)                 # changed her mind
    cast(s.dir, "ann", ["after"], pairs[1:], left)
    append_votes(s.dir, [{"rater": "ann", "pair": pairs[1], "choice": "undo"}])
    assert latest_votes(read_votes(s.dir)) == {(pairs[0], "ann"): shown_side("after", left[pairs[0]])}
    r = preference_stats(s.dir)
    assert (r["vote_rows"], r["counted"], r["history_rows"]) == (4, 1, 3)
    assert r["overall"]["after"] == 1 and r["overall"]["before"] == 0 and r["pairs_judged"] == 1


def test_no_votes_and_bad_votes(study):
    s, pairs, _ = study
    r = preference_stats(s.dir)
    assert r["overall"]["votes"] == 0 and r["overall"]["win_rate"] is None and r["overall"]["sign_test_p"] == 1.0
    assert r["agreement"]["cohen_kappa"] is None
    with pytest.raises(ValueError, match="choice must be one of"):
        append_votes(s.dir, [{"rater": "ann", "pair": pairs[0], "choice": "after"}])
    with pytest.raises(ValueError, match="non-empty rater"):
        append_votes(s.dir, [{"rater": " ", "pair": pairs[0], "choice": "left"}])
    append_votes(s.dir, [{"rater": "ann", "pair": "not-a-pair", "choice": "left"}])
    with pytest.raises(ReasonError, match="unblinding does not know"):
        preference_stats(s.dir)


def test_tally_of_ties_only():
    t = tally(["tie", "tie"])
    assert t["win_rate"] is None and t["win_rate_ties_half"] == 0.5 and t["ties"] == 2
