"""``tagsight judge`` with the sample folders and the study at fsspec URLs (``memory://``: the code path of ``s3://``
without a server): inputs mirrored and named by URL, outputs published with their record last, the rating server
serving a local copy and publishing its votes when it stops (merged with votes another server published meanwhile),
stats/merge/report on the store; a study whose pairs.json never arrived is not taken for one."""

from __future__ import annotations

import io
import json

import pytest
import uvicorn

from tagsight.cli import main
from tagsight.curate.judge.votes import SCHEMA
from tagsight.storage import exists, open_filesystem, read_bytes
from tests.s3server import put_folder

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))


def put_votes(url: str, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), buf)
    fs, inner = open_filesystem(url)
    fs.pipe_file(inner, buf.getvalue())


def votes_on(url: str) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(read_bytes(url))).to_pylist()


def raters(url: str) -> set[str]:
    return {r["rater"] for r in votes_on(url)}


def test_a_study_on_a_store_end_to_end(before_after, tmp_path, capsys, monkeypatch):
    before, after = before_after
    store = f"memory://judge-{tmp_path.name}"
    put_folder(before, f"{store}/samples/before")
    put_folder(after, f"{store}/samples/after")
    b, a, study = f"{store}/samples/before", f"{store}/samples/after", f"{store}/studies/s"
    assert main(["-q", "judge", "aesthetic", b, a, "--out", study, "--resamples", "100"]) == 0
    assert json.loads(read_bytes(f"{study}/aesthetic.json"))["before"]["dir"] == b
    capsys.readouterr()
    assert main(["-q", "judge", "pairs", b, a, "--out", study, "--seed", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["study"] == study
    unblind = json.loads(read_bytes(f"{study}/unblind.json"))
    assert unblind["before"]["dir"] == b and unblind["after"]["dir"] == a
    pairs = json.loads(read_bytes(f"{study}/pairs.json"))["pairs"]
    assert all(exists(f"{study}/images/{p['left']}.png") for p in pairs)

    def rate_and_stop(app, **kwargs):   # the server's lifetime: ann rates every pair while bob's server publishes
        client = TestClient(app)
        for p in pairs:
            assert client.post("/api/vote", json={"rater": "ann", "pair": p["pair"], "choice": "left"}).status_code \
                == 200
        put_votes(f"{study}/votes.parquet", [{"rater": "bob", "pair": p["pair"], "choice": "right",
                                              "at": "2026-01-01T00:00:00+00:00"} for p in pairs])
        assert not exists(f"{study}/votes.parquet") or raters(f"{study}/votes.parquet") == {"bob"}

    monkeypatch.setattr(uvicorn, "run", rate_and_stop)
    assert main(["-q", "judge", "serve", study]) == 0
    rows = votes_on(f"{study}/votes.parquet")
    assert {r["rater"] for r in rows} == {"ann", "bob"} and len(rows) == 2 * len(pairs)   # both servers' votes

    capsys.readouterr()
    assert main(["-q", "judge", "stats", study, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["rater_count"] == 2
    assert json.loads(read_bytes(f"{study}/preference.json"))["overall"] == stats["overall"]

    put_votes(f"{store}/elsewhere/votes.parquet", [{"rater": "cat", "pair": pairs[0]["pair"], "choice": "none",
                                                    "at": "2026-01-02T00:00:00+00:00"}])
    assert main(["-q", "judge", "merge", study, f"{store}/elsewhere/votes.parquet", "--json"]) == 0
    merged = json.loads(capsys.readouterr().out)
    assert merged["added"] == 1 and f"{store}/elsewhere/votes.parquet" in merged["sources"]
    assert raters(f"{study}/votes.parquet") == {"ann", "bob", "cat"}

    assert main(["-q", "judge", "report", study]) == 0
    page = read_bytes(f"{study}/report.html").decode()
    assert study in page and "blind pairwise preference" in page


def test_a_study_without_its_pairs_is_refused_and_nothing_published(tmp_path, capsys, monkeypatch):
    store = f"memory://judge-half-{tmp_path.name}"
    fs, inner = open_filesystem(f"{store}/s")
    fs.pipe_file(f"{inner}/images/x.png", b"png")      # an upload of 'judge pairs' cut off before pairs.json
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: pytest.fail("served an unfinished study"))
    for verb in ("serve", "stats"):
        assert main(["-q", "judge", verb, f"{store}/s"]) == 2
        err = capsys.readouterr().err
        assert "artifact_incomplete" in err and f"{store}/s" in err
    assert not exists(f"{store}/s/preference.json")
    fs.pipe_file(f"{inner}-samples/0000.png", b"png")    # 'generate --out' cut off before samples.jsonl
    with pytest.raises(SystemExit) as stop:
        main(["-q", "judge", "pairs", f"{store}/s-samples", f"{store}/s-samples", "--out", f"{store}/t"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "artifact_incomplete" in err and f"{store}/s-samples" in err and not exists(f"{store}/t/pairs.json")


def test_an_aesthetic_head_at_a_url_scores_and_is_named_by_it(before_after, tmp_path, capsys):
    import numpy as np

    from tagsight.curate.filters.aesthetic import RidgeHead

    x = np.random.default_rng(0).standard_normal((8, 512))
    local = RidgeHead.fit(x, np.array([5.0] * 4 + [1.0] * 4), 0.1, "timm:resnet18", 32).save(tmp_path / "h.json")
    url = f"memory://judge-head-{tmp_path.name}/heads/h.json"
    fs, inner = open_filesystem(url)
    fs.pipe_file(inner, local.read_bytes())
    assert main(["-q", "judge", "aesthetic", *map(str, before_after), "--out", str(tmp_path / "s"), "--head", url,
                 "--resamples", "100"]) == 0
    scorer = json.loads((tmp_path / "s" / "aesthetic.json").read_text())["scorer"]
    assert scorer["kind"] == "head" and scorer["head"] == url
    assert main(["-q", "judge", "aesthetic", *map(str, before_after), "--out", str(tmp_path / "t"), "--head",
                 f"{url}.gone"]) == 2
    assert f"{url}.gone" in capsys.readouterr().err
