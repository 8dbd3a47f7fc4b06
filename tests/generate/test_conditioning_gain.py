"""How much a generator uses its prompt: own tokens against the null token on held-out posts, same fixed noise."""

import json

import pytest
import torch

from tagsight.cli import main
from tagsight.data.index import SampleIndex
from tagsight.generate.heldout import conditioning_gain
from tagsight.generate.method import token_stream
from tagsight.generate.runs import load_generator
from tagsight.train.distributed import DistEnv


def test_cli_reports_both_losses_per_band(base_run, gen_data, tmp_path, capsys):
    dataset, _ = gen_data
    out = tmp_path / "cond.json"
    assert main(["judge", "conditioning", str(base_run), str(dataset), "--repeats", "2", "--out", str(out),
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r == json.loads(out.read_text()) and r["repeats"] == 2 and len(r["bands"]) == 2
    assert r["n_samples"] > 0 and r["bands"][0]["timesteps"] == [0, 50] and r["bands"][1]["timesteps"] == [50, 100]
    for b in r["bands"]:
        assert b["loss_own"] > 0 and b["loss_null"] > 0 and b["gain"] == pytest.approx(b["loss_null"] - b["loss_own"])
    assert r["gain"] == pytest.approx(r["loss_null"] - r["loss_own"]) and r["kind"] == "pretrain"
    assert main(["judge", "conditioning", str(base_run), str(dataset), "--max-samples", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_samples"] == 3


def test_cli_measures_a_run_and_a_dataset_on_object_storage_and_names_their_urls(base_run, gen_data, tmp_path,
                                                                                   capsys, monkeypatch):
    from tests.s3server import put_folder

    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    dataset, _ = gen_data
    store = f"memory://conditioning-{tmp_path.name}"
    put_folder(base_run, f"{store}/runs/g")
    put_folder(dataset, f"{store}/data/ds")
    assert main(["judge", "conditioning", f"{store}/runs/g", f"{store}/data/ds", "--repeats", "2", "--max-samples",
                 "3", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["run"] == f"{store}/runs/g" and r["dataset"] == f"{store}/data/ds" and r["n_samples"] == 3


def test_a_model_whose_tokens_all_embed_alike_gains_nothing(base_run, gen_data):
    dataset, _ = gen_data
    run = load_generator(base_run)
    with torch.no_grad():                   # every token (null included) gets the same embedding, in the EMA too
        weight = run.objective.ema.tokens__embed__weight
        weight.copy_(weight[1].expand_as(weight))
    stream = token_stream(SampleIndex.build(dataset), run.table.vocab, run.cfg, run.objective.data_config, "heldout",
                          DistEnv())
    r = conditioning_gain(run.objective, stream, DistEnv(), repeats=2)
    assert r["n_samples"] > 0
    for b in r["bands"]:
        assert b["gain"] == pytest.approx(0.0, abs=1e-6)


def test_bad_arguments_are_refused(base_run, gen_data, capsys):
    dataset, _ = gen_data
    assert main(["judge", "conditioning", str(base_run), str(dataset), "--repeats", "0"]) == 2
    assert "repeats" in capsys.readouterr().err
