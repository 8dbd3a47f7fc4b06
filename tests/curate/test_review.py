import pytest

from tagsight.curate.chain import CurateConfig, FilterSpec, run_filters
from tagsight.curate.review.agreement import agreement, cohen_kappa
from tagsight.curate.review.queue import ReviewQueue
from tagsight.curate.reviews import check_review, read_reviews
from tagsight.privacy.tombstones import Tombstone, add_tombstones

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from tagsight.curate.review.app import create_review_app  # noqa: E402

RATING = dict.fromkeys(("composition", "lighting", "colour", "subject", "storytelling"), 4)


@pytest.fixture
def curated(tiny_dataset, make_photo):
    ds = tiny_dataset(posts=6, pictures=lambda n: make_photo(n, (96, 72)), max_side=96)
    run_filters(ds, CurateConfig((FilterSpec("blur"), FilterSpec("aesthetic"))))
    return ds


def test_a_true_or_false_rating_is_refused_not_stored_as_1_or_0():
    row = {"key": "k", "post_key": "p", "reviewer": "r", "stage": "specialist", **RATING}
    assert check_review(row)["composition"] == 4
    for flag in (True, False):
        with pytest.raises(ValueError, match="specialist rating composition must be an integer 1-5, got "
                                             f"{flag}"):
            check_review({**row, "composition": flag})


def test_cohen_kappa_known_values():
    assert cohen_kappa(["keep", "reject"] * 5, ["keep", "reject"] * 5) == pytest.approx(1.0)
    a = ["keep"] * 5 + ["reject"] * 5
    b = ["keep", "reject"] * 5
    assert cohen_kappa(a, b) == pytest.approx(0.2)


def test_two_reviewers_resume_agree_and_feed_stage_two(curated):
    client = TestClient(create_review_app(ReviewQueue(curated)))
    first = client.get("/api/next", params={"stage": "generalist", "reviewer": "ann", "n": 64}).json()
    keys = [it["key"] for it in first["items"]]
    assert first["total"] == len(keys) == 9 and first["done"] == 0
    assert client.get(f"/api/image/{keys[0]}").headers["content-type"] == "image/jpeg"
    for i, key in enumerate(keys[:4]):
        assert client.post("/api/review", json={"key": key, "reviewer": "ann", "stage": "generalist",
                                                "decision": "keep" if i < 3 else "reject"}).json() == {"ok": True}
        client.post("/api/review", json={"key": key, "reviewer": "bob", "stage": "generalist",
                                         "decision": "keep" if i != 1 else "reject"})
    # a new server over the same dataset resumes where ann stopped
    client = TestClient(create_review_app(ReviewQueue(curated)))
    again = client.get("/api/next", params={"stage": "generalist", "reviewer": "ann", "n": 64}).json()
    assert again["done"] == 4 and [it["key"] for it in again["items"]] == keys[4:]
    stats = client.get("/api/stats").json()
    assert stats["generalist"]["reviewers"] == 2 and stats["generalist"]["percent_agreement"] == pytest.approx(0.5)
    spec = client.get("/api/next", params={"stage": "specialist", "reviewer": "cat", "n": 64}).json()
    assert [it["key"] for it in spec["items"]] == keys[:4]   # kept by at least one of them (recall)
    ok = client.post("/api/review", json={"key": keys[0], "reviewer": "cat", "stage": "specialist",
                                          "caption": "a red box", **RATING})
    assert ok.status_code == 200
    rows = read_reviews(curated)
    assert len(rows) == 9 and rows[-1]["caption"] == "a red box" and rows[-1]["post_key"].endswith(("p0", "p1", "p2",
                                                                                                    "p3", "p4", "p5"))
    assert agreement(rows)["specialist"]["reviewers"] == 1


def test_bad_reviews_get_400_with_a_reason(curated):
    client = TestClient(create_review_app(ReviewQueue(curated)))
    key = client.get("/api/next", params={"stage": "generalist", "reviewer": "ann"}).json()["items"][0]["key"]
    bad = [{"key": key, "reviewer": "ann", "stage": "generalist", "decision": "maybe"},
           {"key": "nope", "reviewer": "ann", "stage": "generalist", "decision": "keep"},
           {"key": key, "reviewer": "ann", "stage": "specialist", **RATING, "composition": 9},
           {"key": key, "reviewer": "ann", "stage": "specialist", **RATING},   # not kept in stage 1 yet
           {"key": key, "reviewer": "", "stage": "generalist", "decision": "keep"}]
    for body in bad:
        res = client.post("/api/review", json=body)
        assert res.status_code == 400 and res.json()["detail"]["reason"] == "invalid_review", body
    assert client.get("/api/next", params={"stage": "final", "reviewer": "ann"}).status_code == 400
    assert read_reviews(curated) == []


def test_a_forgotten_post_leaves_the_queue_at_once(curated):
    queue = ReviewQueue(curated)
    client = TestClient(create_review_app(queue))
    items = client.get("/api/next", params={"stage": "generalist", "reviewer": "ann", "n": 64}).json()["items"]
    victim = items[0]
    add_tombstones(curated, [Tombstone("post", victim["post_key"])])
    after = client.get("/api/next", params={"stage": "generalist", "reviewer": "ann", "n": 64}).json()["items"]
    assert victim["key"] not in {it["key"] for it in after}
    assert client.get(f"/api/image/{victim['key']}").status_code == 404
    res = client.post("/api/review", json={"key": victim["key"], "reviewer": "ann", "stage": "generalist",
                                           "decision": "keep"})
    assert res.status_code == 400
