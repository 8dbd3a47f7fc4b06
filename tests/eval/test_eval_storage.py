"""``eval knn/linear/finetune/decontaminate`` with their photos, run, pool and config on moto's S3 server: URLs are
mirrored and read, results name the URLs, a run on the store gets its result published into it, a cache folder at a
URL is refused."""

import json
import shutil

import pytest
import torch

pytest.importorskip("s3fs")
pytest.importorskip("moto")

from tagsight.cli import main  # noqa: E402
from tagsight.ingest.images import ImageConfig  # noqa: E402
from tagsight.ingest.pipeline import IngestConfig, ingest  # noqa: E402
from tagsight.ingest.sources import open_source  # noqa: E402
from tagsight.storage import exists, read_bytes  # noqa: E402
from tagsight.train.checkpoint import save_checkpoint  # noqa: E402
from tagsight.train.config import PretrainConfig  # noqa: E402
from tagsight.train.pretrain import build_objective  # noqa: E402
from tests.s3server import bucket, environ, moto_s3, put_folder, s3_env  # noqa: E402

STORE = "s3://eval-storage"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """On the store: class folders (data/train, data/val), a pool holding one train and one val photo, and a run
    (test_vit 32) whose lineage names that pool by its URL."""
    from tests.conftest import write_class_folders

    root = tmp_path_factory.mktemp("evalstore")
    train, val = write_class_folders(root / "data" / "train", 3, seed=0), write_class_folders(root / "data" / "val", 2, seed=1)
    (root / "poolsrc").mkdir()
    shutil.copy(train / "cat" / "0.jpg", root / "poolsrc" / "a.jpg")
    shutil.copy(val / "dog" / "1.jpg", root / "poolsrc" / "b.jpg")
    ingest(open_source(root / "poolsrc", "folder"), root / "pool", cfg=IngestConfig(workers=1, image=ImageConfig(max_side=32)))
    cfg = PretrainConfig.from_dict({"model": {"name": "test_vit", "img_size": 32}})
    run = root / "run"
    run.mkdir()
    (run / "config.yaml").write_text(cfg.to_yaml())
    (run / "run.json").write_text(json.dumps({"kind": "pretrain", "dataset": {"path": f"{STORE}/pool"}}))
    objective = build_objective(cfg, 5)
    save_checkpoint(run, 1, objective, torch.optim.SGD(objective.parameters(), lr=0.1), {"epoch": 0, "batches_done": 0})
    with moto_s3() as endpoint, environ(s3_env(endpoint)):
        bucket(STORE)
        for folder, name in ((train, "data/train"), (val, "data/val"), (root / "pool", "pool"), (run, "runs/r")):
            put_folder(folder, f"{STORE}/{name}")
        yield STORE


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))


def test_knn_on_a_run_and_photos_on_a_store_names_the_urls_and_publishes_into_the_run(store, tmp_path, capsys):
    capsys.readouterr()
    assert main(["-q", "eval", "knn", f"{store}/runs/r", "--train", f"{store}/data/train", "--val", f"{store}/data/val",
                 "--k", "3", "--workers", "0", "--cache-dir", str(tmp_path / "features"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["train"]["path"] == f"{store}/data/train" and result["val"]["path"] == f"{store}/data/val"
    assert result["dataset_id"] == "data" and result["train"]["count"] == 9
    assert result["train"]["identity"].startswith(f"folder:{store}/data/train:")   # never the local copy
    pool = result["decontamination"]   # on by default: the run's lineage names its pool on the store
    assert pool["pool"]["dataset"] == f"{store}/pool" and pool["val"]["removed"] == 1 and result["val"]["count"] == 5
    saved = f"{store}/runs/r/transfer/knn-data.json"
    assert result["saved"] == [saved]
    assert json.loads(read_bytes(saved))["metrics"] == result["metrics"]   # published into the run on the store
    assert str(tmp_path / "cache") not in read_bytes(saved).decode()


def test_linear_on_a_store_saves_into_the_run_and_a_missing_photos_url_is_refused(store, tmp_path, capsys):
    assert main(["-q", "eval", "linear", f"{store}/runs/r", "--train", f"{store}/data/train", "--val",
                 f"{store}/data/val", "--epochs", "2", "--workers", "0", "--no-decontaminate", "--dataset-id", "lin",
                 "--cache-dir", str(tmp_path / "features"), "--out", f"{store}/results/linear.json"]) == 0
    assert json.loads(read_bytes(f"{store}/runs/r/transfer/linear-lin.json"))["decontamination"] == {"enabled": False}
    assert read_bytes(f"{store}/results/linear.json") == read_bytes(f"{store}/runs/r/transfer/linear-lin.json")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["-q", "eval", "knn", f"{store}/runs/r", "--train", f"{store}/nothing", "--val", f"{store}/data/val"])
    assert exit_.value.code == 2 and "artifact_missing" in capsys.readouterr().err


def test_eval_decontaminate_reads_photos_and_pool_from_a_store(store, tmp_path, capsys):
    capsys.readouterr()
    assert main(["-q", "eval", "decontaminate", "--pool", f"{store}/pool", "--train", f"{store}/data/train", "--val",
                 f"{store}/data/val", "--workers", "0", "--cache-dir", str(tmp_path / "hashes"), "--json",
                 "--out", f"{store}/results/decontaminate.json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["train"]["found"], report["val"]["found"]) == (1, 1) and report["pool"]["dataset"] == f"{store}/pool"
    assert json.loads(read_bytes(f"{store}/results/decontaminate.json"))["val"]["found"] == 1   # the report on the store


@pytest.mark.parametrize("verb", ["knn", "decontaminate"])
def test_a_cache_folder_at_a_url_is_refused(store, tmp_path, capsys, verb):
    capsys.readouterr()
    head = ["eval", "knn", "timm:test_vit"] if verb == "knn" else ["eval", "decontaminate", "--pool", f"{store}/pool"]
    with pytest.raises(SystemExit) as exit_:
        main(["-q", *head, "--train", f"{store}/data/train", "--val", f"{store}/data/val",
              "--cache-dir", f"{store}/features"])
    assert exit_.value.code == 2 and "cache_not_local" in capsys.readouterr().err
    assert not exists(f"{store}/features") and not (tmp_path / "s3:").exists()


def test_finetune_reads_its_config_file_from_a_store(store, tmp_path, capsys):
    config = f"{store}/configs/ft.yaml"
    put = {"img_size": 32, "data": {"batch_size": 4, "workers": 0, "eval_batch_size": 8},
           "loop": {"epochs": 1, "log_every": 1}, "optim": {"base_lr": 0.1}}
    _pipe(config, json.dumps(put))   # JSON is YAML
    capsys.readouterr()
    assert main(["-q", "eval", "finetune", "timm:test_vit", "--train", f"{store}/data/train", "--val",
                 f"{store}/data/val", "--no-decontaminate", "--workers", "0", "--cache-dir", str(tmp_path / "f"),
                 "--run-dir", str(tmp_path / "ft"), "--config", config, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["steps"] == 2 and result["metrics"]["global_batch"] == 4   # 9 photos, batches of 4, 1 epoch
    lineage = json.loads((tmp_path / "ft" / "run.json").read_text())
    assert (lineage["train"]["path"], lineage["val"]["path"]) == (f"{store}/data/train", f"{store}/data/val")
    _pipe(config, "loop: {epochz: 1}")
    assert main(["-q", "eval", "finetune", "timm:test_vit", "--train", f"{store}/data/train", "--val",
                 f"{store}/data/val", "--run-dir", str(tmp_path / "ft2"), "--config", config]) == 2
    err = capsys.readouterr().err
    assert "bad_config" in err and config in err and "epochz" in err   # read from the URL, named by it


def _pipe(url: str, text: str) -> None:
    from tagsight.storage import open_filesystem

    fs, inner = open_filesystem(url)
    fs.pipe_file(inner, text.encode())
