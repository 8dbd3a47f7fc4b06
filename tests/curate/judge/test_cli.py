"""The verb end to end: aesthetic, pairs, votes, stats, report (own and inside a run report)."""

import json
import re

from tagsight.cli import main
from tagsight.curate.judge.pairs import PairStudy
from tagsight.curate.judge.votes import append_votes

from .conftest import write_samples


def test_judge_verb_end_to_end(before_after, tmp_path, capsys):
    before, after = before_after
    run = tmp_path / "run"
    study = run / "judge"
    assert main(["judge", "aesthetic", str(before), str(after), "--out", str(study), "--resamples", "200",
                 "--json"]) == 0
    printed = capsys.readouterr().out
    assert '"mean_diff"' in printed and '"sharpness"' in printed
    assert main(["judge", "pairs", str(before), str(after), "--out", str(study), "--seed", "5"]) == 0
    s = PairStudy.load(study)
    secret = s.unblind()["pairs"]
    append_votes(study, [{"rater": "ann", "pair": p["pair"], "choice": "left" if secret[p["pair"]]["left"] == "after"
                          else "right"} for p in s.pairs])
    capsys.readouterr()
    assert main(["judge", "stats", str(study), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["overall"]["win_rate"] == 1.0 and stats["overall"]["sign_test_p"] == 2 / 64
    assert json.loads((study / "preference.json").read_text())["overall"] == stats["overall"]

    assert main(["judge", "report", str(study), "--out", str(tmp_path / "judge.html")]) == 0
    page = (tmp_path / "judge.html").read_text()
    for title in ("samples before and after", "aesthetic score before and after", "blind pairwise preference"):
        assert title in page
    assert "100.0%" in page and "#dog" in page
    assert page.count("data:image/png;base64,") >= 5     # 2 grids, histogram, measure bars, win-rate plot
    assert not re.search(r'(src|href)="(?!data:)', page)  # self-contained
    assert main(["report", str(run), "--out", str(tmp_path / "run.html")]) == 0
    assert "blind pairwise preference" in (tmp_path / "run.html").read_text()


def test_errors_are_clear(tmp_path, sharp, capsys):
    b = write_samples(tmp_path / "b", sharp, per_prompt=2)
    a = write_samples(tmp_path / "a", sharp, per_prompt=1, kind="tune")
    assert main(["judge", "aesthetic", str(b), str(a), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "unpaired_samples" in err and "missing_after: prompt '#dog' seed 1" in err
    assert not (tmp_path / "s" / "aesthetic.json").exists()
    assert main(["judge", "pairs", str(b), str(tmp_path / "nowhere"), "--out", str(tmp_path / "s")]) == 2
    assert "not_a_sample_dir" in capsys.readouterr().err
    assert main(["judge", "stats", str(tmp_path)]) == 2
    assert "not_a_study" in capsys.readouterr().err
    assert main(["judge", "report", str(tmp_path)]) == 2
    assert "not_a_study" in capsys.readouterr().err
