import importlib.util
import json
from pathlib import Path

import pytest

from tagsight.cli import main
from tagsight.schema.catalog import load_manifest

_spec = importlib.util.spec_from_file_location("relevance_conftest", Path(__file__).parents[1] / "relevance" / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
colour_dataset = _fixtures.colour_dataset  # the tiny colour-coded dataset of tests/relevance


@pytest.fixture(scope="module")
def scored(colour_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "scores"
    code = main(["-q", "relevance", "score", str(colour_dataset["dataset"]), "--vocab", str(colour_dataset["vocab_path"]),
                 "--out", str(out), "--backbone", "timm:resnet18", "--img-size", "32", "--folds", "2", "--epochs", "3",
                 "--cache-dir", str(out.parent / "cache")])
    assert code == 0
    return out


def test_score_writes_a_scores_folder(scored, capsys):
    meta = json.loads((scored / "scores.json").read_text())
    assert meta["config"]["backbone"] == "timm:resnet18" and meta["config"]["folds"] == 2
    assert (scored / "pairs.parquet").is_file() and (scored / "labels.json").is_file()


def test_filter_truth_and_report(scored, colour_dataset, tmp_path, capsys):
    assert main(["-q", "relevance", "filter", str(scored), "--select", "pairs", "--threshold", "0.4",
                 "--out", str(tmp_path / "f")]) == 0
    out = capsys.readouterr().out
    manifest = load_manifest(tmp_path / "f")
    c = manifest["counts"]
    assert f"pairs: {c['pairs_in']:,} in = {c['pairs_kept']:,} kept + {c['pairs_dropped']:,} dropped" in out
    assert manifest["parent"]["version"] == load_manifest(colour_dataset["dataset"])["version"]
    assert main(["-q", "relevance", "truth", str(scored), "--truth", str(colour_dataset["truth"]),
                 "--thresholds", "0.2", "0.4"]) == 0
    assert "flagging wrong + non-visual pairs: AP" in capsys.readouterr().out
    result = json.loads((scored / "truth.json").read_text())
    assert [r["threshold"] for r in result["at_thresholds"]] == [0.2, 0.4]
    assert main(["-q", "relevance", "report", str(scored), "--truth", str(colour_dataset["truth"]),
                 "--threshold", "0.4", "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    for title in ("Pair scores", "Least visual labels", "Examples of dropped pairs", "Flagging wrong"):
        assert title in page
    assert page.count("data:image/png;base64,") >= 3
    import re

    said = re.search(r"the lowest (\d+) are shown", page)
    table = page.split("Examples of dropped pairs", 1)[1].split("</table>", 1)[0]
    assert said and int(said.group(1)) == table.count("<tr>") - 1   # what it says it shows is what it shows


def test_errors_exit_2_with_a_reason(scored, colour_dataset, tmp_path, capsys):
    assert main(["relevance", "filter", str(tmp_path), "--select", "pairs", "--threshold", "0.1",
                 "--out", str(tmp_path / "x")]) == 2
    assert "not_a_scores_folder" in capsys.readouterr().err
    assert main(["relevance", "filter", str(scored), "--select", "pairs", "--out", str(tmp_path / "x")]) == 2
    assert "missing_threshold" in capsys.readouterr().err
    assert main(["relevance", "filter", str(scored), "--select", "pairs", "--threshold", "0.1",
                 "--out", str(colour_dataset["dataset"])]) == 2
    assert "out_is_parent" in capsys.readouterr().err
    assert main(["relevance", "truth", str(scored), "--truth", str(tmp_path / "none.jsonl")]) == 2
    assert "truth_missing" in capsys.readouterr().err


def test_filter_json_carries_the_counts_and_the_old_policy_flag_still_works(scored, tmp_path, capsys, caplog):
    assert main(["-q", "relevance", "filter", str(scored), "--select", "pairs", "--threshold", "0.4",
                 "--out", str(tmp_path / "j"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["counts"] == load_manifest(tmp_path / "j")["counts"]
    assert result["counts"]["pairs_in"] == result["counts"]["pairs_kept"] + result["counts"]["pairs_dropped"]
    assert main(["relevance", "filter", str(scored), "--policy", "labels", "--threshold", "0.02",
                 "--out", str(tmp_path / "old")]) == 0
    assert load_manifest(tmp_path / "old")["relevance"]["filter"]["policy"] == "labels"
    assert "--policy is deprecated and will be removed: use --select" in caplog.text
    assert main(["relevance", "filter", str(scored), "--threshold", "0.1", "--out", str(tmp_path / "n")]) == 2
    assert "missing_select" in capsys.readouterr().err
    assert main(["relevance", "filter", str(scored), "--select", "pairs", "--threshold", "1.0",
                 "--out", str(tmp_path / "empty")]) == 2          # every pair below 1.0: nothing left to export
    assert "empty_result" in capsys.readouterr().err and not (tmp_path / "empty" / "manifest.json").exists()


def test_score_config_and_set_reach_the_score_config(colour_dataset, tmp_path, capsys):
    args = ["relevance", "score", str(colour_dataset["dataset"]), "--vocab", str(colour_dataset["vocab_path"]),
            "--out", str(tmp_path / "s")]
    assert main([*args, "--set", "lrr=0.1"]) == 2
    assert "did you mean 'lr'" in capsys.readouterr().err and not (tmp_path / "s").exists()
    (tmp_path / "score.yaml").write_text("folds: 1\n")
    assert main([*args, "--config", str(tmp_path / "score.yaml")]) == 2
    assert "folds" in capsys.readouterr().err
