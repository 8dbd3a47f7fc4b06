"""The review flow in a real browser: Debian's chromium driven by playwright, against the real server."""

import pytest

import json

from tagsight.curate.chain import CurateConfig, FilterSpec, run_filters
from tagsight.curate.export import ExportConfig, export_curated
from tagsight.data.index import SampleIndex
from tagsight.curate.review.queue import ReviewQueue
from tagsight.curate.reviews import read_reviews


@pytest.fixture
def server(tiny_dataset, make_photo, live_server):
    from tagsight.curate.review.app import create_review_app

    ds = tiny_dataset(posts=4, pictures=lambda n: make_photo(n, (96, 72)), max_side=96)
    run_filters(ds, CurateConfig((FilterSpec("blur"),)))
    return ds, live_server(create_review_app(ReviewQueue(ds)))


@pytest.fixture
def page(browser_page):
    return browser_page


def wait_key_change(page, old):
    page.wait_for_function("old => document.getElementById('photo').dataset.key !== old", arg=old, timeout=20000)


def test_generalist_keys_then_specialist_ratings_land_in_the_catalog_and_export(server, page, tmp_path):
    ds, url = server
    page.goto(f"{url}/?reviewer=ann&stage=generalist")
    page.wait_for_selector("#photo[src]")
    assert "to go" in page.inner_text("#progress")
    decisions = []
    for key_press in ["k", "ArrowRight", "r", "k", "ArrowLeft", "k"]:
        old = page.get_attribute("#photo", "data-key")
        decisions.append(old)
        page.keyboard.press(key_press)
        wait_key_change(page, old)
    assert page.inner_text("#status") == "Queue done. Thank you!"   # all 6 photos judged
    page.keyboard.press("z")   # back one: the last photo is shown again and re-judged
    page.wait_for_function(f"document.getElementById('photo').dataset.key === '{decisions[-1]}'")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('back one')")
    page.keyboard.press("r")   # saved, then the (empty) queue is shown again
    page.wait_for_function("document.getElementById('status').textContent === 'Queue done. Thank you!'")
    rows = [r for r in read_reviews(ds) if r["stage"] == "generalist"]
    latest = {r["key"]: r["decision"] for r in rows}
    assert len(rows) == 7 and latest[decisions[0]] == "keep" and latest[decisions[2]] == "reject"
    assert latest[decisions[-1]] == "reject"   # the newer judgement counts

    page.goto(f"{url}/?reviewer=cat&stage=specialist")
    page.wait_for_selector("#photo[src]")
    first = page.get_attribute("#photo", "data-key")
    for digit in "45342":
        page.keyboard.press(digit)
    page.keyboard.press("c")
    page.keyboard.type("a bright blue box on a grey wall")
    page.keyboard.press("Control+Enter")
    wait_key_change(page, first)
    spec = [r for r in read_reviews(ds) if r["stage"] == "specialist"]
    assert len(spec) == 1 and spec[0]["key"] == first and spec[0]["caption"] == "a bright blue box on a grey wall"
    assert [spec[0][a] for a in ("composition", "lighting", "colour", "subject", "storytelling")] == [4, 5, 3, 4, 2]
    page.click("#show-stats")
    page.wait_for_selector("#stats table")
    assert "Cohen's kappa" in page.inner_text("#stats")

    # what the browser decided is what the curated version holds: the one photo rated 3.6 on average
    summary = export_curated(ds, tmp_path / "curated", ExportConfig("specialist", min_rating=3.5))
    assert summary.samples_kept == 1 and SampleIndex.build(tmp_path / "curated").keys == [first]
    manifest = json.loads((tmp_path / "curated" / "manifest.json").read_text())
    assert manifest["parent"]["path"] == str(ds.resolve()) and manifest["derivation"]["kind"].startswith("curate")
