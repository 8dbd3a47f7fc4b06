"""The fetcher against a real HTTP server on 127.0.0.1 that answers slowly, fails, redirects and opts out."""

import time

import pytest

import urllib.robotparser

from tagsight.ingest.fetch import USER_AGENT, FetchConfig, Fetcher, is_remote, parse_retry_after
from tagsight.ingest.optouts import DISALLOWED_DIRECTIVES, parse_tdmrep, robots_allowed, tdm_reserved, x_robots_optout
from tagsight.ingest.images import ImageRejected
from tests.ingest.webserver import Site, jpeg

# generous timeouts where an answer is expected (the machine may be busy); short ones only to provoke timeouts
FAST = FetchConfig(allow_private_addresses=True, timeout=2.0, total_timeout=4.0, retries=1, backoff=0.01, threads=4, per_host=2)
SHORT = FetchConfig(allow_private_addresses=True, timeout=0.3, total_timeout=4.0, retries=1, backoff=0.01)


def fetch(site, path, cfg=FAST, max_bytes=100_000):
    with Fetcher(cfg, max_bytes) as f:
        return f.fetch(site.url(path))


def reason(site, path, **kw):
    with pytest.raises(ImageRejected) as info:
        fetch(site, path, **kw)
    return info.value.reason


def test_an_image_is_fetched_with_our_user_agent():
    seen = {}
    with Site() as site:
        original = site._answer

        def spy(h):
            seen[h.path] = h.headers.get("User-Agent")
            return original(h)

        site._answer = spy
        assert fetch(site, "/img/3.jpg") == jpeg(3)
    assert seen["/img/3.jpg"] == USER_AGENT and seen["/robots.txt"] == USER_AGENT
    assert USER_AGENT.startswith("tagsight/")


def test_a_slow_answer_is_a_fetch_timeout_after_the_retries():
    with Site(slow_s=1.5) as site:
        start = time.monotonic()
        assert reason(site, "/slow.jpg", cfg=SHORT) == "fetch_timeout"
        assert site.hits["/slow.jpg"] == 2  # first attempt + one retry
        assert time.monotonic() - start < 2.5


def test_a_body_that_trickles_past_the_total_timeout_is_a_fetch_timeout():
    cfg = FetchConfig(allow_private_addresses=True, timeout=2.0, total_timeout=0.2, retries=0, backoff=0.01)
    with Site(slow_s=1.0) as site:
        assert reason(site, "/trickle.jpg", cfg=cfg) == "fetch_timeout"


def test_a_500_then_200_is_retried_and_fetched():
    with Site() as site:
        assert fetch(site, "/flaky/4.jpg") == jpeg(4)
        assert site.hits["/flaky/4.jpg"] == 2


def test_persistent_500_is_fetch_failed_with_the_status():
    with Site() as site:
        assert reason(site, "/always500.jpg") == "fetch_failed:500"
        assert site.hits["/always500.jpg"] == 2


def test_a_404_is_not_retried():
    with Site() as site:
        assert reason(site, "/gone.jpg") == "fetch_failed:404"
        assert site.hits["/gone.jpg"] == 1


def test_429_with_retry_after_is_honoured_and_a_wait_beyond_the_cap_fails_at_once():
    with Site() as site:
        assert fetch(site, "/busy/5.jpg") == jpeg(5)
        assert site.hits["/busy/5.jpg"] == 2
        start = time.monotonic()
        assert reason(site, "/busy-long.jpg") == "fetch_failed:429"
        assert site.hits["/busy-long.jpg"] == 1 and time.monotonic() - start < 3  # not an hour


def test_retry_after_forms():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_a_connection_error_is_fetch_error():
    with Site() as site:
        dead = site.url("/img/1.jpg")
    with Fetcher(FAST, 100_000) as f, pytest.raises(ImageRejected) as info:
        f.fetch(dead)
    assert info.value.reason == "robots_txt_unreachable"  # robots.txt is asked first: RFC 9309 disallows all
    cfg = FetchConfig(allow_private_addresses=True, timeout=2.0, retries=0, robots_txt=False, tdm_rep=False)
    with Fetcher(cfg, 100_000) as f, pytest.raises(ImageRejected) as info:
        f.fetch(dead)
    assert info.value.reason == "fetch_error"


def test_redirects_are_followed_up_to_the_limit():
    with Site() as site:
        assert fetch(site, "/redirect/6.jpg") == jpeg(6)
        assert reason(site, "/loop.jpg") == "too_many_redirects"
        assert site.hits["/loop.jpg"] == FAST.max_redirects + 1


def test_oversized_bodies_are_refused_declared_or_streamed():
    with Site() as site:
        assert reason(site, "/big.jpg", max_bytes=50_000) == "file_too_large"
        assert reason(site, "/big-nolength.jpg", max_bytes=50_000) == "file_too_large"
        assert len(fetch(site, "/big-nolength.jpg", max_bytes=300_000)) == 200_000


def test_content_type_is_checked_and_a_mislabelled_body_still_arrives_for_decoding():
    with Site() as site:
        assert reason(site, "/page.jpg") == "unsupported_content_type"
        assert fetch(site, "/mislabelled.jpg").startswith(b"this is plain text")


@pytest.mark.parametrize("path,expected", [
    ("/noai/1.jpg", "optout_x_robots_tag"), ("/noindex.jpg", "optout_x_robots_tag"),
    ("/scoped-us.jpg", "optout_x_robots_tag"), ("/tdm/2.jpg", "optout_tdm_reservation")])
def test_header_opt_outs(path, expected):
    with Site() as site:
        assert reason(site, path) == expected


def test_a_directive_scoped_to_another_agent_does_not_apply():
    with Site() as site:
        assert fetch(site, "/scoped-other.jpg")


def test_x_robots_tag_parsing():
    assert DISALLOWED_DIRECTIVES == ("noai", "noimageai", "noindex", "noimageindex")
    d = DISALLOWED_DIRECTIVES
    assert x_robots_optout(["NoImageAI"], "tagsight", d) == "noimageai"
    assert x_robots_optout(["nofollow", "noarchive"], "tagsight", d) is None
    assert x_robots_optout(["googlebot: noindex"], "tagsight", d) is None
    assert x_robots_optout(["TagSight: noai, nofollow"], "tagsight", d) == "noai"
    assert x_robots_optout(["unavailable_after: 25 Jun 2010 15:00:00 PST, noindex"], "tagsight", d) == "noindex"
    assert x_robots_optout(["max-image-preview: large"], "tagsight", d) is None
    assert x_robots_optout(["noindex"], "tagsight", ("noai",)) is None


def test_robots_txt_for_our_agent_is_honoured_and_fetched_once_per_site():
    robots = "User-agent: otherbot\nDisallow: /\n\nUser-agent: tagsight\nDisallow: /private/\n"
    with Site(robots=robots) as site:
        with Fetcher(FAST, 100_000) as f:
            got = f.fetch_all([site.url("/private/1.jpg"), site.url("/img/1.jpg"), site.url("/to-private.jpg"),
                               site.url("/img/2.jpg")])
        assert [g.reason if isinstance(g, ImageRejected) else "ok" for g in got] == [
            "optout_robots_txt", "ok", "optout_robots_txt", "ok"]
        assert site.hits["/robots.txt"] == 1
        assert "/private/1.jpg" not in site.requests  # never requested, not even through the redirect


def test_robots_txt_disallowing_everyone_and_a_failing_robots_txt():
    with Site(robots="User-agent: *\nDisallow: /\n") as site:
        assert reason(site, "/img/1.jpg") == "optout_robots_txt"
    with Site(robots_status=503) as site:
        assert reason(site, "/img/1.jpg") == "robots_txt_unreachable"
        assert "/img/1.jpg" not in site.requests
    with Site(robots_status=403) as site:  # RFC 9309: a 4xx robots.txt allows all
        assert fetch(site, "/img/1.jpg") == jpeg(1)


def test_robots_txt_wildcards_and_the_longest_match_as_rfc_9309_says():
    robots = "User-agent: tagsight\nAllow: /img/1.jpg\nDisallow: /*.jpg$\n\nUser-agent: *\nDisallow: /\n"
    with Site(robots=robots) as site, Fetcher(FAST, 100_000) as f:
        got = f.fetch_all([site.url("/img/1.jpg"), site.url("/img/2.jpg")])
        assert got[0] == jpeg(1) and got[1].reason == "optout_robots_txt"
        assert "/img/2.jpg" not in site.requests

    def allowed(text, url, agent="tagsight"):
        parser = urllib.robotparser.RobotFileParser()
        parser.parse(text.splitlines())
        return robots_allowed(parser, agent, "http://x" + url)

    assert not allowed(robots, "/a.jpg", agent="otherbot")  # the * group
    assert allowed(robots, "/a.jpg?size=2", agent="tagsight")  # $ ends the pattern: a query does not match
    both = "User-agent: *\nDisallow: /img/\nAllow: /img/ok/\n"
    assert allowed(both, "/img/ok/1.jpg") and not allowed(both, "/img/1.jpg")
    assert allowed("User-agent: *\nAllow: /a\nDisallow: /a\n", "/a")  # a tie: allow wins
    assert allowed("User-agent: *\nDisallow:\n", "/a") and allowed("", "/a")


def test_tdmrep_json_reserves_by_location_first_match_wins():
    rules = [{"location": "/reserved/*", "tdm-reservation": 1}, {"location": "/*", "tdm-reservation": 0}]
    with Site(tdmrep=rules) as site, Fetcher(FAST, 100_000) as f:
        got = f.fetch_all([site.url(p) for p in ("/reserved/1.jpg", "/img/1.jpg", "/img/2.jpg")])
        assert isinstance(got[0], ImageRejected) and got[0].reason == "optout_tdm_reservation"
        assert got[1:] == [jpeg(1), jpeg(2)]
        assert "/reserved/1.jpg" not in site.requests
        assert site.hits["/.well-known/tdmrep.json"] == 1
    parsed = parse_tdmrep('[{"location": "/a/*.jpg$", "tdm-reservation": 1}, {"location": "/", "tdm-reservation": 0}]')
    assert tdm_reserved(parsed, "http://x/a/b/c.jpg") and not tdm_reserved(parsed, "http://x/a/b.jpg?s=1")
    assert not tdm_reserved(parsed, "http://x/b.jpg")
    with pytest.raises(ValueError):
        parse_tdmrep('{"location": "/"}')


def test_a_broken_tdmrep_json_reserves_nothing():
    with Site(tdmrep="not json") as site:
        assert fetch(site, "/img/1.jpg") == jpeg(1)


def test_per_host_concurrency_is_limited_and_results_keep_input_order():
    cfg = FetchConfig(allow_private_addresses=True, timeout=2.0, retries=0, threads=8, per_host=2)
    with Site(delay_s=0.1, gather=2) as site:     # pairs meet at the server; a third at once would raise the peak
        urls = [site.url(f"/img/{n}.jpg") for n in range(8)]
        with Fetcher(cfg, 100_000) as f:
            got = f.fetch_all(urls)
        assert got == [jpeg(n) for n in range(8)]
        assert site.peak == 2


def test_invalid_urls_and_config_are_refused():
    with Fetcher(FAST, 100) as f:
        for url in ("ftp://x/a.jpg", "http:///a.jpg", "http://x:99999/a.jpg"):
            with pytest.raises(ImageRejected) as info:
                f.fetch(url)
            assert info.value.reason == "invalid_url", url
    assert is_remote("HTTPS://x/a") and not is_remote("a/https://x")
    for bad in ({"timeout": 0}, {"retries": -1}, {"per_host": 0}, {"agent_token": "two words"}):
        with pytest.raises(ValueError):
            FetchConfig(**bad)
