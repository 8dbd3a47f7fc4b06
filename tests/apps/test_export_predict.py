import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from tagsight.apps.bundle import load_bundle
from tagsight.apps.export import compare_onnx, export_bundle, export_model
from tagsight.eval.backbones import load_backbone


@pytest.fixture(scope="module")
def with_head(tiny_bundle, tiny_run, tmp_path_factory):
    """A copy of the tiny bundle with a moderation head in heads/safety."""
    import shutil

    from tagsight.apps.heads import HeadConfig, train_head

    root = tmp_path_factory.mktemp("with_head")
    bundle = Path(shutil.copytree(tiny_bundle, root / "bundle"))
    data = root / "data"
    for name, colour in {"safe": (40, 200, 60), "spam": (200, 40, 40)}.items():
        (data / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (40, 40), tuple(c + 5 * i for c in colour)).save(data / name / f"{i}.png")
    train_head(data, load_bundle(bundle).embedder.backbone, str(tiny_run[2]), bundle / "heads" / "safety",
               HeadConfig(task="moderate", epochs=2, val_fraction=0.5))
    return bundle


@pytest.fixture(scope="module")
def exported(with_head, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    return export_bundle(with_head, out, onnx=True), out


def test_onnx_outputs_match_pytorch(exported, with_head):
    config, out = exported
    config = config["tagsight"]
    assert config["outputs"] == ["features", "hashtags_logits", "safety_probabilities"]
    assert config["heads"]["safety"]["kind"] == "moderate" and (out / "heads" / "safety.safetensors").is_file()
    assert config["heads"]["safety"]["app"] == "moderate"
    assert max(config["onnx"]["max_abs_diff"].values()) <= 1e-4
    bundle = load_bundle(with_head)
    size = bundle.embedder.backbone.data_config.input_size
    x = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(7))  # another batch size
    diffs = compare_onnx(export_model(bundle), out / "model.onnx", x)
    assert set(diffs) == set(config["outputs"]) and max(diffs.values()) <= 1e-4


def test_safetensors_export_reloads_to_the_same_features(exported, tiny_bundle):
    config, out = exported
    bundle = load_bundle(tiny_bundle)
    config = config["tagsight"]
    assert config["backbone"]["timm_kwargs"] == {}   # a timm-initialised run: timm's defaults rebuild it
    again = load_backbone(f"file:{out / 'model.safetensors'}", config["backbone"]["data_config"]["input_size"],
                          arch=config["backbone"]["arch"])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(again(x), bundle.embedder.backbone(x), atol=1e-6)
    head = load_file(str(out / "heads" / "hashtags.safetensors"))
    assert torch.equal(head["weight"], bundle.run.head.weight.detach())
    assert len(config["heads"]["hashtags"]["labels"]) == head["weight"].shape[0]
    assert config["heads"]["hashtags"]["calibrator"]["method"] == "platt"


@pytest.fixture
def cli(capsys):
    """Run the tagsight CLI in this process (no interpreter start-up); returns stdout."""
    from tagsight.cli import main

    def run(*args, code=0):
        capsys.readouterr()
        assert main(["-q", *args]) == code
        out = capsys.readouterr()
        return out.out if code == 0 else out.err

    return run


def test_predict_cli_writes_jsonl_and_csv_with_a_row_for_an_unreadable_image(tiny_bundle, tmp_path, cli):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (40, 30), (60 * i, 90, 200)).save(folder / f"{i}.jpg")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    cli("predict", str(folder), "--app", "hashtags", "--app", "alt-text", "--bundle", str(tiny_bundle),
        "--out", str(tmp_path / "out.jsonl"), "--batch-size", "2")
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and {r["app"] for r in rows} == {"hashtags", "alt-text"}
    broken = [r for r in rows if r["image"].endswith("broken.jpg")]
    assert len(broken) == 2 and all(r["error"] == "unreadable_image" for r in broken)
    good = [r for r in rows if r["app"] == "alt-text" and "error" not in r]
    assert len(good) == 3 and all(r["alt_text"].startswith(("Image may contain", "No photo")) for r in good)
    cli("predict", str(folder / "0.jpg"), str(folder / "1.jpg"), "--app", "hashtags", "--bundle", str(tiny_bundle),
        "--format", "csv", "--out", str(tmp_path / "out.csv"), "--option", "k=2", "--option", "threshold=0")
    table = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text())))
    assert [r["image"].rsplit("/", 1)[-1] for r in table] == ["0.jpg", "1.jpg"]
    assert all(len(json.loads(r["hashtags"])) == 2 and r["abstained"] == "false" for r in table)  # threshold 0, k 2


def test_predict_cli_explains_an_unavailable_app(tiny_bundle, tmp_path, cli):
    Image.new("RGB", (40, 30)).save(tmp_path / "a.jpg")
    err = cli("predict", str(tmp_path / "a.jpg"), "--app", "similar", "--bundle", str(tiny_bundle), code=2)
    assert "app_unavailable" in err and "index build" in err


def test_export_cli(tiny_bundle, tmp_path, cli):
    result = json.loads(cli("export", str(tiny_bundle), "--out", str(tmp_path / "exp"), "--onnx", "--json"))
    assert result["architecture"] == "test_vit" and result["heads"] == ["hashtags"]
    assert max(result["onnx_max_abs_diff"].values()) <= 1e-4 and (tmp_path / "exp" / "config.json").is_file()
    assert np.isfinite(list(result["onnx_max_abs_diff"].values())).all()


def test_export_config_loads_in_timm_offline_as_timm_documents(exported, tiny_bundle, monkeypatch):
    """config.json is timm's pretrained_cfg: create_model(arch, pretrained=True, pretrained_cfg_overlay=...) loads it."""
    import timm

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config, out = exported
    cfg = config["pretrained_cfg"]
    assert config["architecture"] == cfg["architecture"] == "test_vit" and config["num_classes"] == cfg["num_classes"] == 0
    assert cfg["input_size"] == [3, 32, 32] and len(cfg["mean"]) == len(cfg["std"]) == 3 and 0 < cfg["crop_pct"] <= 1
    want = load_bundle(tiny_bundle).embedder.backbone
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    overlay = timm.create_model(config["architecture"], pretrained=True, **config["model_args"],
                                pretrained_cfg_overlay=dict(cfg, file=str(out / "model.safetensors")))
    plain = timm.create_model(config["architecture"], pretrained=True, num_classes=0, **config["model_args"],
                              pretrained_cfg_overlay=dict(file=str(out / "model.safetensors")))
    local = timm.create_model(f"local-dir:{out}", pretrained=True)
    with torch.no_grad():
        for model in (overlay, plain, local):
            assert torch.allclose(model.eval()(x), want(x), atol=1e-6)
    assert tuple(timm.data.resolve_data_config({}, model=local)["mean"]) == tuple(cfg["mean"])


def test_export_carries_a_hugging_face_model_card(exported):
    import yaml

    _, out = exported
    text = (out / "README.md").read_text()
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["library_name"] == "timm" and front["pipeline_tag"] == "image-classification"
    assert front["license"] and "timm" in front["tags"] and "moderate" in front["tags"]
    assert "# Model card" in text and "local-dir" in text


def test_an_export_is_a_bundle_that_predict_and_serve_load_wherever_it_is_moved(exported, with_head, tmp_path, cli):
    import shutil

    from fastapi.testclient import TestClient

    from tagsight.serve.app import create_app
    from tagsight.serve.loader import load_bundle_apps

    _, out = exported
    moved = Path(shutil.copytree(out, tmp_path / "elsewhere" / "export"))
    original, again = load_bundle(with_head), load_bundle(moved)
    assert set(again.apps) == set(original.apps) == {"hashtags", "alt-text", "moderate"}
    images = [Image.new("RGB", (40, 40), c) for c in ((200, 40, 40), (40, 200, 60))]
    assert again.predict(images, ["hashtags", "moderate"]) == original.predict(images, ["hashtags", "moderate"])
    images[0].save(tmp_path / "a.jpg")
    cli("predict", str(tmp_path / "a.jpg"), "--app", "moderate", "--app", "safety", "--bundle", str(moved),
        "--out", str(tmp_path / "p.jsonl"))
    assert [json.loads(r)["app"] for r in (tmp_path / "p.jsonl").read_text().splitlines()] == ["moderate", "safety"]
    with TestClient(create_app(load_bundle_apps(moved, "cpu"))) as c:
        r = c.post("/v1/alt-text", content=(tmp_path / "a.jpg").read_bytes(), headers={"content-type": "image/jpeg"})
        assert r.status_code == 200, r.text
    chain = cli("lineage", str(moved))                   # lineage accepts exports and bundles
    assert chain.startswith(f"export {moved} version ") and f"<- bundle {with_head.resolve()}" in chain
    assert "<- run " in chain and "[not found]" not in chain
    assert cli("lineage", str(with_head)).startswith(f"bundle {with_head} version ")


def test_an_export_whose_weights_were_swapped_is_refused(exported, tmp_path):
    import shutil

    from safetensors.torch import save_file

    from tagsight.fsio import ReasonError

    _, out = exported
    bad = Path(shutil.copytree(out, tmp_path / "bad"))
    tensors = load_file(str(bad / "model.safetensors"))
    save_file({k: v + 1 if v.is_floating_point() else v for k, v in tensors.items()}, str(bad / "model.safetensors"))
    with pytest.raises(ReasonError) as e:
        load_bundle(bad)
    assert e.value.reason == "export_mismatch"


def test_a_bundle_moved_with_its_run_or_alone_still_loads(tiny_run, tmp_path):
    """bundle.json holds the run relative to the bundle and, as a fallback, the absolute path it had."""
    import shutil

    from tagsight.apps.bundle import init_bundle
    from tagsight.fsio import ReasonError

    project = tmp_path / "project"
    shutil.copytree(tiny_run[2], project / "runs" / "r")
    bundle = init_bundle(project / "bundles" / "b", str(project / "runs" / "r"))
    record = json.loads((bundle / "bundle.json").read_text())
    assert record["backbone"] == "../../runs/r" and Path(record["backbone_resolved"]).is_absolute()
    moved = Path(shutil.move(str(project), tmp_path / "moved"))          # the whole project moves
    assert load_bundle(moved / "bundles" / "b").run is not None
    alone = Path(shutil.copytree(tiny_run[2], tmp_path / "runs2" / "r"))
    b2 = init_bundle(tmp_path / "b2", str(alone))
    lone = Path(shutil.move(str(b2), tmp_path / "far" / "b2"))         # the bundle alone moves
    assert load_bundle(lone).run.run_dir == alone
    old = tmp_path / "old"
    old.mkdir()
    (old / "bundle.json").write_text(json.dumps({"backbone": str(alone)}))   # the old form keeps loading
    assert load_bundle(old).run is not None
    shutil.rmtree(alone)
    with pytest.raises(ReasonError) as e:
        load_bundle(lone)
    assert e.value.reason == "backbone_missing"


def test_a_head_trained_on_an_export_is_served_by_it(exported, tmp_path, cli, make_colour_folder):
    import shutil

    _, out = exported
    moved = Path(shutil.copytree(out, tmp_path / "exp"))
    data = make_colour_folder(tmp_path / "data", {"red": (220, 40, 40), "blue": (40, 60, 220)}, per_class=4)
    cli("heads", "train", "--task", "categorize", "--data", str(data), "--backbone", str(moved),
        "--out", str(moved / "heads" / "products"), "--epochs", "2", "--val-fraction", "0.5")
    bundle = load_bundle(moved)
    assert bundle.apps["categorize"].head_name == "products" and "moderate" in bundle.apps


def test_a_run_folder_exported_directly_names_the_run_as_its_parent(tiny_run, tmp_path):
    from tagsight.lineage import read_artifact

    _, _, run = tiny_run
    export_bundle(run, tmp_path / "exp")
    parents = read_artifact(tmp_path / "exp").parents
    assert [p.kind for p in parents] == ["run"] and parents[0].path == str(run.resolve())
    assert set(load_bundle(tmp_path / "exp").missing) == {"hashtags", "alt-text", "similar"}   # no calibration.json


def test_an_export_keeps_the_open_set_guard_of_its_bundle(tiny_run, tmp_path):
    """A bundle calibrated with pictures of nothing (the default) exports with its guard, which abstains alike."""
    from tagsight.apps.bundle import init_bundle
    from tagsight.apps.calibration import CalibrationConfig, calibrate_run

    _, _, run = tiny_run
    bundle = init_bundle(tmp_path / "guarded", str(run))
    calibrate_run(run, bundle, CalibrationConfig(target_precision=0.3, min_support=1, z=0.0))
    export_bundle(bundle, tmp_path / "export")
    a, b = load_bundle(bundle).apps["hashtags"], load_bundle(tmp_path / "export").apps["hashtags"]
    assert a.guard is not None and b.guard is not None
    features = np.random.default_rng(0).normal(size=(6, a.embedder.num_features)).astype(np.float32)
    assert a.predict_features(features) == b.predict_features(features)


def test_bundles_and_exports_on_object_storage_load_predict_and_keep_their_lineage(with_head, tiny_run, tmp_path,
                                                                                   monkeypatch):
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    from tagsight.lineage import Ref, read_artifact
    from tagsight.serve.loader import load_bundle_apps
    from tests.s3server import environ, moto_s3, s3_env, upload

    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    images = [Image.new("RGB", (40, 40), c) for c in ((200, 40, 40), (40, 200, 60))]
    apps = ["hashtags", "moderate"]
    expected = load_bundle(with_head).predict(images, apps)
    with moto_s3() as endpoint, environ(s3_env(endpoint)):
        upload(tiny_run[2], "s3://models/runs/r")
        upload(with_head, "s3://models/bundles/b")          # the run beside it, named relative to the bundle
        from tagsight.storage import open_filesystem
        fs, _ = open_filesystem("s3://models")
        fs.pipe_file("models/bundles/b/bundle.json", json.dumps({"backbone": "../../runs/r"}).encode())
        there = load_bundle("s3://models/bundles/b")
        assert there.predict(images, apps) == expected
        export_bundle("s3://models/bundles/b", "s3://models/exports/e")
        assert load_bundle("s3://models/exports/e").predict(images, apps) == expected
        assert set(load_bundle_apps("s3://models/exports/e", "cpu")) == {"hashtags", "alt-text", "moderate"}
        parents = read_artifact("s3://models/exports/e").parents
        assert Ref("bundle", "s3://models/bundles/b", parents[0].version) == parents[0]
        assert parents[1].path == "s3://models/runs/r"
