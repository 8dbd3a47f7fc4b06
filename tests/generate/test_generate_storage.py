"""``generate RUN --out`` and ``generate tune RUN CURATED --out`` with the run, the curated dataset and the outputs on
moto's S3 server: the outputs are published records last, a reader on the store finds them, lineage names URLs."""

import json

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto")

from tagsight.cli import main  # noqa: E402
from tagsight.data.derive import Drop, Keep, derive_dataset  # noqa: E402
from tagsight.generate.runs import load_generator  # noqa: E402
from tagsight.lineage import read_artifact  # noqa: E402
from tagsight.storage import exists, local_folder, read_bytes  # noqa: E402
from tests.s3server import bucket, environ, moto_s3, put_folder, s3_env  # noqa: E402

TUNE = ["data.batch_size=8", "data.epoch_length=32", "data.workers=0", "data.holdout_fraction=0.25", "lr=1e-4",
        "max_steps=4", "eval_every=2", "eval_repeats=1", "patience=5", "checkpoint_every=2", "log_every=1"]


@pytest.fixture(scope="module")
def store(base_run, gen_data, tmp_path_factory):
    """moto's S3 server holding the tiny generator run and a curated version of its dataset."""
    curated = tmp_path_factory.mktemp("curated") / "set"
    derive_dataset(gen_data[0], curated, lambda i, meta: Keep() if i % 2 == 0 else Drop("test_not_chosen"),
                   "curate_test")
    with moto_s3() as endpoint, environ(s3_env(endpoint)):
        bucket("s3://generate-storage")
        put_folder(base_run, "s3://generate-storage/runs/base")
        put_folder(curated, "s3://generate-storage/datasets/curated")
        yield "s3://generate-storage"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))


def test_generate_samples_a_run_on_a_store_into_the_store(store, base_run, capsys):
    tokens = json.loads((base_run / "tokens.json").read_text())
    prompt = "#" + sorted(tokens["lookup"])[0]
    capsys.readouterr()
    assert main(["-q", "generate", f"{store}/runs/base", "--prompt", prompt, "--n", "2", "--steps", "3",
                 "--out", f"{store}/samples/a", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 2
    rows = [json.loads(line) for line in read_bytes(f"{store}/samples/a/samples.jsonl").decode().splitlines()]
    assert len(rows) == 2 and rows[0]["model"]["run"] == f"{store}/runs/base"   # the run by its URL
    assert all(exists(f"{store}/samples/a/{r['file']}") for r in rows) and exists(f"{store}/samples/a/grid.png")
    samples = read_artifact(f"{store}/samples/a")
    assert samples.kind == "generated" and [p.path for p in samples.parents] == [f"{store}/runs/base"]


def test_generate_tune_reads_and_writes_a_store_and_its_tuned_run_samples_from_there(store, capsys):
    capsys.readouterr()
    args = ["-q", "generate", "tune", f"{store}/runs/base", f"{store}/datasets/curated", "--out", f"{store}/runs/tuned",
            "--json"]
    for s in TUNE:
        args += ["--set", s]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps_trained"] == 4
    info = json.loads(read_bytes(f"{store}/runs/tuned/run.json"))
    assert info["kind"] == "tune" and info["backbone_run"]["path"] == f"{store}/runs/base"
    assert info["dataset"]["path"] == f"{store}/datasets/curated"
    assert read_bytes(f"{store}/runs/tuned/checkpoints/latest").decode().strip() == "step-00000004"
    assert exists(f"{store}/runs/tuned/tune.json")
    tuned = load_generator(local_folder(f"{store}/runs/tuned", marker="run.json"))
    assert tuned.kind == "tune" and tuned.checkpoint.name == "best" and tuned.step == result["best_step"]
