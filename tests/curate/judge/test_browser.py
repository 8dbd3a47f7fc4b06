"""The rating page in a real browser: Debian's chromium driven by playwright, against the real server."""

import pytest

from tagsight.curate.judge.pairs import PairStudy, make_pair_study
from tagsight.curate.judge.preference import preference_stats
from tagsight.curate.judge.votes import read_votes


@pytest.fixture
def server(before_after, tmp_path, live_server):
    from tagsight.curate.judge.app import create_judge_app
    from tagsight.curate.judge.queue import VoteQueue

    make_pair_study(*before_after, tmp_path / "study", seed=2)
    return tmp_path / "study", live_server(create_judge_app(VoteQueue(tmp_path / "study")))


@pytest.fixture
def page(browser_page):
    return browser_page


def shown(page) -> str:
    return page.get_attribute("#pair", "data-pair")


def press(page, key) -> str:
    old = shown(page)
    page.keyboard.press(key)
    page.wait_for_function("old => document.getElementById('pair').dataset.pair !== old", arg=old, timeout=20000)
    return old


def test_keys_vote_undo_and_resume_after_reload(server, page):
    study, url = server
    order = [p["pair"] for p in PairStudy.load(study).pairs]
    page.goto(f"{url}/?rater=ann")
    page.wait_for_selector("#left[src]")
    assert shown(page) == order[0] and page.inner_text("#prompt")
    assert page.evaluate("getComputedStyle(document.getElementById('left')).imageRendering") == "pixelated"
    # the image is served and decoded at its own size (wait: src is set before the bytes arrive)
    page.wait_for_function("document.getElementById('left').complete && document.getElementById('left').naturalWidth > 0",
                           timeout=20000)
    assert page.evaluate("document.getElementById('left').naturalWidth") == 32
    voted = [press(page, k) for k in ("ArrowLeft", "l", "ArrowDown")]
    assert voted == order[:3]
    page.keyboard.press("z")                          # undo: the last pair comes back
    page.wait_for_function(f"document.getElementById('pair').dataset.pair === '{order[2]}'")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('undone')")
    press(page, "=")                                  # judged again: no preference
    press(page, "a")
    rows = read_votes(study)
    assert [(r["pair"], r["choice"]) for r in rows] == [(order[0], "left"), (order[1], "right"), (order[2], "none"),
                                                        (order[2], "undo"), (order[2], "none"), (order[3], "left")]
    assert {r["rater"] for r in rows} == {"ann"}
    assert "4 done · 2 to go" in page.inner_text("#progress")

    page.reload()                                     # resume where ann stopped
    page.wait_for_selector("#left[src]")
    page.wait_for_function(f"document.getElementById('pair').dataset.pair === '{order[4]}'")
    assert "4 done" in page.inner_text("#progress")
    press(page, "ArrowRight")
    press(page, "ArrowRight")
    page.wait_for_function("document.getElementById('status').textContent === 'All pairs judged. Thank you!'")

    page.goto(f"{url}/?rater=bob")                    # a second rater starts from the first pair
    page.wait_for_function(f"document.getElementById('pair').dataset.pair === '{order[0]}'")
    press(page, "ArrowLeft")
    stats = preference_stats(study)
    assert stats["raters"] == ["ann", "bob"] and stats["overall"]["votes"] == 7 and stats["overall"]["ties"] == 1
    assert stats["agreement"]["shared_judgements"] == 1 and stats["agreement"]["percent_agreement"] == 1.0
