"""``eval finetune --run-dir s3://...`` on moto's S3 server: the run trains in a local staging folder, its checkpoints
and records are published to the store, and a rerun on a fresh machine resumes from what the store holds."""

import json
import shutil

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto")

from tagsight.cli import main  # noqa: E402
from tagsight.storage import local_folder, read_bytes  # noqa: E402
from tests.s3server import bucket, environ, moto_s3, s3_env  # noqa: E402

SETS = ["img_size=32", "data.batch_size=4", "data.workers=0", "data.eval_batch_size=8", "loop.log_every=1",
        "optim.base_lr=0.2", "optim.name=adamw", "optim.weight_decay=0.0", "loop.checkpoint_every=2"]


def test_finetune_into_a_store_publishes_the_run_and_a_fresh_machine_continues_it(tmp_path, class_folders,
                                                                                  monkeypatch, capsys):
    train, val = class_folders(tmp_path / "train", 4, seed=0), class_folders(tmp_path / "val", 2, seed=1)
    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    url = "s3://finetune-storage/runs/ft"

    def finetune(epochs: int) -> dict:
        args = ["-q", "eval", "finetune", "timm:test_vit", "--train", str(train), "--val", str(val), "--workers", "0",
                "--cache-dir", str(tmp_path / "features"), "--run-dir", url, "--json"]
        for s in [*SETS, f"loop.epochs={epochs}"]:
            args += ["--set", s]
        capsys.readouterr()
        assert main(args) == 0
        return json.loads(capsys.readouterr().out)

    with moto_s3() as endpoint, environ(s3_env(endpoint)):
        bucket(url)
        result = finetune(2)
        assert result["metrics"]["steps"] == 6 and result["metrics"]["run_dir"] == url   # named by its URL
        assert json.loads(read_bytes(f"{url}/run.json"))["kind"] == "finetune"
        assert json.loads(read_bytes(f"{url}/finetune.json"))["metrics"]["steps"] == 6
        assert read_bytes(f"{url}/checkpoints/latest").decode().strip() == "step-00000006"
        shutil.rmtree(tmp_path / "cache")   # another machine: no staging folder
        more = finetune(3)                  # a longer schedule continues from the store's checkpoint
        assert more["metrics"]["steps"] == 9
        rows = [json.loads(line) for line in read_bytes(f"{url}/metrics.jsonl").decode().splitlines()]
        assert [r["step"] for r in rows] == list(range(1, 10))   # steps 1-6 came back from the store, 7-9 added
        monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "reader"))
        published = local_folder(url, marker="run.json")
    assert sorted(p.name for p in (published / "checkpoints").iterdir()) == ["latest", "step-00000008",
                                                                             "step-00000009"]
