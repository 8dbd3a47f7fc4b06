import pytest

from tagsight.curate.judge.pairs import PairStudy, make_pair_study
from tagsight.curate.judge.votes import read_votes

testclient = pytest.importorskip("fastapi.testclient")


@pytest.fixture
def client(before_after, tmp_path):
    from tagsight.curate.judge.app import create_judge_app
    from tagsight.curate.judge.queue import VoteQueue

    make_pair_study(*before_after, tmp_path / "study")
    (tmp_path / "secret.txt").write_text("outside")
    return testclient.TestClient(create_judge_app(VoteQueue(tmp_path / "study"))), tmp_path / "study"


def test_queue_shows_prompts_and_opaque_ids_only(client):
    c, study = client
    data = c.get("/api/next", params={"rater": "ann", "n": 64}).json()
    assert data["total"] == data["remaining"] == 6 and data["done"] == 0
    text = c.get("/api/next", params={"rater": "ann"}).text
    for word in ("before", "after", "pretrain", "tune", ".png", "runs/"):
        assert word not in text
    first = data["items"][0]
    img = c.get(f"/api/image/{first['left']}")
    assert img.status_code == 200 and img.headers["content-type"] == "image/png" and img.content[:4] == b"\x89PNG"
    page = c.get("/").text.lower()
    assert "before" not in page and "after" not in page and "tune" not in page


@pytest.mark.parametrize("path", ["/api/image/..%2Funblind.json", "/api/image/../unblind.json",
                                  "/api/image/..%2F..%2Fsecret.txt", "/api/image/%2Fetc%2Fpasswd",
                                  "/api/image/unblind.json", "/api/image/pairs", "/api/image/..",
                                  "/unblind.json", "/images/x.png", "/votes.parquet"])
def test_nothing_but_study_images_is_served(client, path):
    c, _ = client
    r = c.get(path)
    assert 400 <= r.status_code < 500
    assert b"outside" not in r.content and b'"left"' not in r.content


def test_votes_are_validated_stored_and_resumed(client):
    c, study = client
    pairs = [p["pair"] for p in PairStudy.load(study).pairs]
    assert c.post("/api/vote", json={"pair": pairs[0], "rater": "ann", "choice": "left"}).json() == {"ok": True}
    assert c.post("/api/vote", json={"pair": "nope", "rater": "ann", "choice": "left"}).status_code == 400
    assert c.post("/api/vote", json={"pair": pairs[1], "rater": "ann", "choice": "after"}).status_code == 400
    assert c.post("/api/vote", json={"pair": pairs[1], "rater": "ann", "choice": "undo"}).status_code == 400
    assert c.get("/api/next", params={"rater": ""}).status_code == 422
    nxt = c.get("/api/next", params={"rater": "ann"}).json()
    assert nxt["done"] == 1 and nxt["items"][0]["pair"] == pairs[1]
    assert c.get("/api/next", params={"rater": "bob"}).json()["items"][0]["pair"] == pairs[0]   # per rater
    assert [(r["rater"], r["pair"], r["choice"]) for r in read_votes(study)] == [("ann", pairs[0], "left")]
