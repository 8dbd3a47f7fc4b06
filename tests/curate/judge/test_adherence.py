"""Prompt adherence judged by the packaged ImageNet Lite0 and by a hashtag model, on photos whose answer is known,
and its refusals."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tagsight.cli import main
from tagsight.curate.judge.adherence import (AdherenceConfig, adherence_study, concept_members, judged,
                                             prompt_concepts, prompt_spread, to_resolution)
from tagsight.curate.judge.samples import read_samples
from tagsight.fsio import ReasonError

from .conftest import flat

# imagenette class folder -> (vocabulary label, hashtag)
CLASSES = {"n01440764": ("tench.n.01", "tench"), "n03028079": ("church.n.02", "church"),
           "n03445777": ("golf_ball.n.01", "golfball")}
PER_PROMPT, REAL_PER_CLASS = 4, 12


def run_folder(root: Path, labels: list[tuple[str, str]]) -> Path:
    """A generator run folder as far as adherence reads it: ``tokens.json``, the vocabulary."""
    rows = [{"index": i, "label": label, "wnid": "", "lexname": "noun.artifact", "definition": "", "members": {tag: 5},
             "posts": 5, "sampling_weight": 1.0} for i, (label, tag) in enumerate(labels)]
    vocab = {"format": 1, "version": "test", "config": {}, "labels": rows, "drops": [], "ambiguous": [],
             "coverage": {}, "input": {}, "lookup": {tag: i for i, (_, tag) in enumerate(labels)}}
    root.mkdir(parents=True, exist_ok=True)
    (root / "tokens.json").write_text(json.dumps(vocab))
    return root


def sample_folder(out: Path, run: Path, prompts: list[str], picture, per_prompt: int = PER_PROMPT,
                  size: int = 32) -> Path:
    """A 'tagsight generate' folder: image i of prompt p is ``picture(p, i)`` at ``size`` px."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for p, prompt in enumerate(prompts):
        for i in range(per_prompt):
            name = f"{len(rows):04d}.png"
            picture(p, i).resize((size, size)).save(out / name)
            rows.append({"file": name, "prompt": prompt, "tokens_used": prompt.split(), "tokens_unknown": [],
                         "seed": i, "steps": 20, "guidance": 3.0, "size": size,
                         "model": {"run": str(run), "step": 10, "kind": "pretrain"}})
    (out / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


@pytest.fixture(scope="module")
def imagenette(tmp_path_factory):
    """(photos per class folder, a real folder of other photos): from the shared imagenette val split."""
    from tests.conftest import SHARED_DATA

    val = SHARED_DATA / "imagenette-160" / "val"
    if not val.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set TAGSIGHT_DATA or put shared/ beside the repo)")
    real = tmp_path_factory.mktemp("real")
    photos = {}
    for wnid in CLASSES:
        files = sorted((val / wnid).iterdir())
        photos[wnid] = files[:PER_PROMPT]
        (real / wnid).mkdir()
        for f in files[PER_PROMPT:PER_PROMPT + REAL_PER_CLASS]:
            shutil.copy(f, real / wnid / f.name)
    (real / "n00000000-notes").mkdir()            # a folder of no concept is ignored
    return photos, real


@pytest.fixture(scope="module")
def study(imagenette, tmp_path_factory):
    """Three sample folders of known answer: real photos under their own prompt, under another's, and flat colour."""
    photos, real = imagenette
    root = tmp_path_factory.mktemp("adherence")
    run = run_folder(root / "run", list(CLASSES.values()))
    prompts = [f"#{tag}" for _, tag in CLASSES.values()]
    wnids = list(CLASSES)

    def photo(k: int, i: int) -> Image.Image:
        with Image.open(photos[wnids[k]][i]) as img:
            return to_resolution(img, 32)

    matched = sample_folder(root / "matched", run, prompts, photo)
    swapped = sample_folder(root / "swapped", run, prompts, lambda p, i: photo((p + 1) % 3, i))
    flat_dir = sample_folder(root / "flat", run, prompts, lambda p, i: flat((40 * p, 90, 200 - 10 * i)))
    out = root / "study"
    result = adherence_study([matched, swapped, flat_dir], real, out, AdherenceConfig(resamples=20))
    return result, out


def test_the_judge_names_real_photos_under_their_own_prompt_and_not_under_another(study):
    result, out = study
    sets = {s["name"]: s for s in result["sets"]}
    assert result["chance"] == pytest.approx(1 / 3)
    assert [c["concept"] for c in result["concepts"]] == [label for label, _ in CLASSES.values()]
    assert sets["matched"]["accuracy"] >= 0.75 and sets["matched"]["ci95"][0] > result["chance"]
    assert sets["swapped"]["accuracy"] <= 0.25
    assert sets["matched"]["images"] == 3 * PER_PROMPT and sum(map(sum, sets["matched"]["confusion"])) == 12
    swapped_confusion = np.asarray(sets["swapped"]["confusion"])
    assert np.trace(swapped_confusion) == sets["swapped"]["correct"]
    assert json.loads((out / "adherence.json").read_text())["sets"][0]["accuracy"] == sets["matched"]["accuracy"]


def test_real_photos_at_the_same_resolution_are_the_ceiling(study):
    result, _ = study
    real = result["real"]
    assert real["listed"] == 3 * REAL_PER_CLASS == real["read"] + real["unreadable"]
    assert sorted(real["folders"]) == sorted(CLASSES)                 # the unrelated folder counted for no concept
    assert real["accuracy"] >= 0.75 and all(c["images"] == REAL_PER_CLASS for c in real["per_concept"])
    matched = result["sets"][0]
    assert all(row["half_of_real"] is not None for row in matched["per_prompt"])
    assert matched["prompts_half_of_real"] >= 2


def test_frechet_distance_puts_flat_colour_far_from_photos(study):
    result, _ = study
    fd = {s["name"]: s["frechet"] for s in result["sets"]}
    assert "efficientnet-lite0" in result["frechet"]["backbone"]
    assert result["frechet"]["reference_images"] == 3 * REAL_PER_CLASS - 3 * PER_PROMPT
    assert fd["matched"]["distance"] == pytest.approx(fd["swapped"]["distance"])   # the same pictures
    assert fd["flat"]["ci95"][0] > fd["matched"]["ci95"][1]
    floor = result["frechet"]["real_floor"]
    assert floor["images"] == 3 * PER_PROMPT and floor["distance"] < fd["flat"]["distance"]
    diffs = {d["set"]: d for d in result["frechet"]["differences"]}
    assert set(diffs) == {"swapped", "flat"} and {d["minus"] for d in diffs.values()} == {"matched"}
    assert diffs["swapped"]["difference"] == pytest.approx(0.0, abs=1e-6)
    assert diffs["swapped"]["ci95"][0] < 0.0 < diffs["swapped"]["ci95"][1]     # the same pictures: no difference
    assert diffs["flat"]["ci95"][0] > 0.0                                        # flat colour: further, surely


def test_judged_sums_the_imagenet_classes_of_each_concept():
    logits = np.log(np.array([[0.3, 0.3, 0.4], [0.1, 0.1, 0.8]]))
    # concept 0 owns classes 0 and 1 (0.6 together), concept 1 owns class 2
    assert judged(logits, [[0, 1], [2]]).tolist() == [0, 1]


def _folder(tmp_path, labels, prompts, name="s"):
    run = run_folder(tmp_path / "run", labels)
    return sample_folder(tmp_path / name, run, prompts, lambda p, i: flat((10 * p, 0, 0)), per_prompt=1)


def test_a_prompt_must_name_exactly_one_concept(tmp_path):
    folder = _folder(tmp_path, [("tench.n.01", "tench"), ("church.n.02", "church")], ["#tench #church", "#tench"])
    with pytest.raises(ReasonError, match="names 2 vocabulary labels") as exc:
        prompt_concepts(read_samples(folder))
    assert exc.value.reason == "not_one_concept"


def test_concepts_the_imagenet_judge_cannot_see_are_refused():
    with pytest.raises(ReasonError, match="sky.n.01") as exc:
        concept_members(["tench.n.01", "sky.n.01"])
    assert exc.value.reason == "no_imagenet_class"


def test_missing_run_vocabulary_and_one_concept_are_refused(tmp_path):
    folder = _folder(tmp_path, [("tench.n.01", "tench")], ["#tench"])
    with pytest.raises(ReasonError) as exc:
        adherence_study([folder], None, tmp_path / "out")
    assert exc.value.reason == "need_distinct_concepts"
    (tmp_path / "run" / "tokens.json").unlink()
    with pytest.raises(ReasonError) as exc:
        adherence_study([folder], None, tmp_path / "out")
    assert exc.value.reason == "missing_run_vocabulary"


def test_config_is_validated():
    with pytest.raises(ValueError, match="real_per_concept"):
        AdherenceConfig(real_per_concept=-1)
    with pytest.raises(ValueError, match="resamples"):
        AdherenceConfig(resamples=2)


def test_cli_refuses_with_a_reason_and_measures_without_real_photos(tmp_path, capsys):
    folder = _folder(tmp_path, [("tench.n.01", "tench"), ("sky.n.01", "sky")], ["#tench", "#sky"])
    assert main(["judge", "adherence", str(folder), "--out", str(tmp_path / "o")]) == 2
    assert "no_imagenet_class" in capsys.readouterr().err
    folder = _folder(tmp_path / "b", [("tench.n.01", "tench"), ("church.n.02", "church")], ["#tench", "#church"])
    assert main(["judge", "adherence", str(folder), "--out", str(tmp_path / "o"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["concepts"] == 2 and printed["sets"][0]["real_accuracy"] is None
    saved = json.loads((tmp_path / "o" / "adherence.json").read_text())
    assert saved["real"] is None and saved["frechet"] is None and saved["sets"][0]["images"] == 2


def test_the_judge_report_draws_adherence_and_distance(study, capsys):
    _, out = study
    assert main(["judge", "report", str(out), "--out", str(out / "r.html")]) == 0
    html = (out / "r.html").read_text()
    assert "does the generator draw the prompted concept" in html and "Fréchet distance to real photos" in html
    assert html.count("<img") >= 2 and "#golfball" in html and "real photos (floor)" in html
    assert "spread between prompts / between seeds" in html
    assert "95% interval (paired bootstrap)" in html and "matched is closer to the photos" in html   # flat - matched


def _spread_of(tmp_path: Path, picture, per_prompt: int = 3) -> dict | None:
    run = run_folder(tmp_path / "run", list(CLASSES.values()))
    folder = sample_folder(tmp_path / "s", run, ["#tench", "#church"], picture, per_prompt=per_prompt, size=8)
    samples = read_samples(folder)
    return prompt_spread(samples, [Image.open(s.path).convert("RGB") for s in samples])


def test_the_spread_is_zero_between_prompts_when_the_prompt_changes_nothing(tmp_path):
    spread = _spread_of(tmp_path, lambda p, i: flat((60 * i, 0, 0)))       # the seed decides, never the prompt
    assert spread["between_prompts"] == 0.0 and spread["between_seeds"] > 0
    # seeds 0, 60, 120 in one channel of three: each sample is 0 or 60 from its prompt's mean of 60
    assert spread["between_seeds"] == pytest.approx(np.sqrt((60 ** 2 * 2 / 3) / 3))
    assert (spread["prompts"], spread["seeds"]) == (2, 3)


def test_the_spread_is_zero_between_seeds_when_only_the_prompt_decides(tmp_path):
    spread = _spread_of(tmp_path, lambda p, i: flat((0, 100 * p, 0)))
    assert spread["between_seeds"] == 0.0
    assert spread["between_prompts"] == pytest.approx(np.sqrt(50 ** 2 / 3))


def test_the_spread_needs_the_same_seeds_for_every_prompt(tmp_path):
    assert _spread_of(tmp_path, lambda p, i: flat((0, 0, 0)), per_prompt=1) is None      # one seed
    run = run_folder(tmp_path / "run2", list(CLASSES.values()))
    folder = sample_folder(tmp_path / "s2", run, ["#tench", "#church"], lambda p, i: flat((0, 0, 0)), per_prompt=2)
    rows = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    rows[-1]["seed"] = 7                                                      # #church drawn from seeds 0 and 7
    (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples = read_samples(folder)
    assert prompt_spread(samples, [Image.open(s.path).convert("RGB") for s in samples]) is None


def test_the_study_reports_each_folders_spread(study):
    result, out = study
    spreads = {s["name"]: s["spread"] for s in result["sets"]}
    assert spreads["flat"]["between_seeds"] > 0 and spreads["flat"]["between_prompts"] > 0
    assert json.loads((out / "adherence.json").read_text())["sets"][0]["spread"] == spreads["matched"]


# ------------------------------------------------------------------------- a hashtag model as the judge

COLOURED = {"car.n.01": ("car", (220, 30, 30)), "boat.n.01": ("boat", (30, 60, 220)),
            "flower.n.01": ("flower", (230, 220, 40))}


def _noisy(colour: tuple[int, int, int], seed: int, size: int = 32) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(np.clip(np.asarray(colour) + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def judge_run(tmp_path_factory):
    """A hashtag pretraining run (tiny, on the synthetic feed) whose head is then set to the nearest colour mean of
    three of its labels, so the answer is known: red is #car, blue #boat, yellow #flower."""
    from safetensors.torch import load_file, save_file

    from tagsight.cli.judge import run_judge
    from tagsight.models.runs import latest_checkpoint
    from tagsight.train.config import PretrainConfig
    from tagsight.train.distributed import DistEnv
    from tagsight.train.pretrain import pretrain
    from tests.feeds import feed_dataset

    root = tmp_path_factory.mktemp("judge_run")
    dataset, vocab = feed_dataset(root, n_posts=60, n_authors=6, image_size=48, seed=5)
    sets = ["model.name=test_vit", "model.img_size=32", "data.workers=0", "data.epoch_length=32",
            "data.batch_size=16", "loop.epochs=1", "loop.log_every=100"]
    config = Path(__file__).resolve().parents[3] / "configs" / "pretrain_cpu_small.yaml"
    pretrain(dataset, vocab, root / "run", PretrainConfig.from_yaml(config, sets), DistEnv())
    judge = run_judge(root / "run", 64)
    weights_file = latest_checkpoint(root / "run") / "model.safetensors"
    tensors = load_file(str(weights_file))
    weight, bias = torch.zeros_like(tensors["head.weight"]), torch.full_like(tensors["head.bias"], -1e6)
    with torch.no_grad():
        for label, (_, colour) in COLOURED.items():
            x = torch.stack([judge.transform(_noisy(colour, 900 + i)) for i in range(8)])
            mean = judge.backbone(x).mean(0)
            k = judge.labels.index(label)
            weight[k], bias[k] = mean, -0.5 * mean.dot(mean)
    save_file({**tensors, "head.weight": weight, "head.bias": bias}, str(weights_file))
    return root / "run"


def test_a_hashtag_model_judges_concepts_imagenet_does_not_know_and_lite0_still_gives_the_distance(
        judge_run, tmp_path, capsys):
    labels = [(label, tag) for label, (tag, _) in COLOURED.items()]
    run = run_folder(tmp_path / "gen", labels)
    prompts, colours = [f"#{tag}" for _, tag in labels], [c for _, c in COLOURED.values()]
    matched = sample_folder(tmp_path / "matched", run, prompts, lambda p, i: _noisy(colours[p], i))
    swapped = sample_folder(tmp_path / "swapped", run, prompts, lambda p, i: _noisy(colours[(p + 1) % 3], i))
    real = tmp_path / "real"
    for label, (_, colour) in COLOURED.items():                      # class folders named by synset name
        (real / label).mkdir(parents=True)
        for i in range(10):
            _noisy(colour, 500 + i, 48).save(real / label / f"{i}.png")
    out = tmp_path / "study"
    assert main(["judge", "adherence", str(matched), str(swapped), "--real", str(real), "--judge", str(judge_run),
                 "--out", str(out), "--resamples", "10", "--json"]) == 0
    result = json.loads((out / "adherence.json").read_text())
    sets = {s["name"]: s for s in result["sets"]}
    assert sets["matched"]["accuracy"] == 1.0 and sets["swapped"]["accuracy"] == 0.0
    assert result["real"]["accuracy"] == 1.0 and result["real"]["read"] == 30
    assert str(judge_run) in result["classifier"]["name"] and "hashtag head" in result["classifier"]["mapping"]
    vocab = json.loads(Path(json.loads((judge_run / "run.json").read_text())["vocab"]["path"]).read_text())
    assert [vocab["labels"][c["judge_label"]]["label"] for c in result["concepts"]] == [c for c, _ in labels]
    assert "efficientnet-lite0" in result["frechet"]["backbone"]      # the distance stays on Lite0's features
    assert sets["matched"]["frechet"]["distance"] == pytest.approx(sets["swapped"]["frechet"]["distance"])
    assert json.loads(capsys.readouterr().out)["sets"][0]["accuracy"] == 1.0


def test_a_concept_the_judge_run_does_not_know_is_refused_with_a_reason(judge_run, tmp_path, capsys):
    run = run_folder(tmp_path / "gen", [("car.n.01", "car"), ("tench.n.01", "tench")])
    folder = sample_folder(tmp_path / "s", run, ["#car", "#tench"], lambda p, i: flat((10 * p, 0, 0)), per_prompt=1)
    assert main(["judge", "adherence", str(folder), "--judge", str(judge_run), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "concept_not_in_judge" in err and "tench.n.01" in err
    assert main(["judge", "adherence", str(folder), "--judge", str(tmp_path / "s"), "--out", str(tmp_path / "o")]) == 2
    assert "not_a_run" in capsys.readouterr().err
