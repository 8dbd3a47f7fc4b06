"""``apps calibrate --verified URL --unseen URL``: the verified-labels file read through fsspec, photos of nothing (a
folder or one file at a URL) copied into the local cache and named by their URLs; missing ones refused naming the URL
(``memory://``: the code path of ``s3://`` without a server)."""

from __future__ import annotations

import io
import json

import pytest

from tagsight.apps.calibration import read_unseen
from tagsight.apps.verified import load_verified
from tagsight.cli import main
from tagsight.data.index import SampleIndex
from tagsight.fsio import ReasonError
from tagsight.storage import open_filesystem
from tagsight.tags.vocab import Vocabulary
from tests.apps.conftest import coloured


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))


def put(url: str, data: bytes) -> str:
    fs, inner = open_filesystem(url)
    fs.pipe_file(inner, data)
    return url


def jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    coloured((30 + 20 * seed % 200, 120, 200), seed).save(buf, "JPEG")
    return buf.getvalue()


def verified_rows(dataset, vocab):
    index = SampleIndex.build(dataset)
    held = [i for i, h in enumerate(index.holdout(0.3, 0)) if h]
    return [{"post_key": index.post_keys[i],
             "labels": [vocab.labels[c].label for c in vocab.labels_for(index.hashtags[i])[:1]]}
            for i in held[: len(held) // 2]]


def test_calibrate_reads_verified_labels_and_unseen_photos_at_urls(tiny_run, tmp_path, capsys):
    dataset, vocab_path, run = tiny_run
    vocab = Vocabulary.load(vocab_path)
    store = f"memory://calibrate-inputs-{tmp_path.name}"
    rows = verified_rows(dataset, vocab)
    verified = put(f"{store}/verified.jsonl", "\n".join(json.dumps(r) for r in rows).encode())
    assert load_verified(verified, vocab).path == verified
    for i in range(11):
        put(f"{store}/nothing/{i:02d}.jpg", jpeg(i))
    single = put(f"{store}/one/extra.jpg", jpeg(99))
    capsys.readouterr()
    assert main(["-q", "apps", "calibrate", str(run), "--out", str(tmp_path / "bundle"), "--verified", verified,
                 "--unseen", f"{store}/nothing", "--unseen", single, "--rendered-unseen", "0",
                 "--target-precision", "0.3", "--min-support", "1", "--z", "0", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)["heldout"]
    assert counts["concepts_measured_on"] == "verified labels" and counts["unseen"] == 12
    names, images, unreadable = read_unseen([f"{store}/nothing", single])
    assert names == [f"{store}/nothing/{i:02d}.jpg" for i in range(11)] + [single]    # named by URL, not the copy
    assert len(images) == 12 and unreadable == 0


def test_missing_inputs_at_urls_are_refused_naming_the_url(tiny_run, tmp_path, capsys):
    _, vocab_path, run = tiny_run
    store = f"memory://calibrate-missing-{tmp_path.name}"
    with pytest.raises(ReasonError, match=f"{store}/none.jsonl") as err:
        load_verified(f"{store}/none.jsonl", Vocabulary.load(vocab_path))
    assert err.value.reason == "verified_missing"
    assert main(["-q", "apps", "calibrate", str(run), "--out", str(tmp_path / "b"), "--unseen", f"{store}/nothing",
                 "--rendered-unseen", "0"]) == 2
    err_text = capsys.readouterr().err
    assert "artifact_missing" in err_text and f"{store}/nothing" in err_text
