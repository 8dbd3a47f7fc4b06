"""URLs that would reach private networks are refused (IPv4, IPv6, DNS answers, redirects); Crawl-delay honoured."""

from __future__ import annotations

import socket
import time

import pytest

from tagsight.ingest import fetch as fetch_module
from tagsight.ingest.fetch import FetchConfig, Fetcher
from tagsight.ingest.images import ImageRejected
from tagsight.ingest.transport import address_refusal
from tests.ingest.webserver import Site

GUARDED = FetchConfig(timeout=2.0, total_timeout=4.0, retries=0, backoff=0.01)
OPEN = FetchConfig(timeout=2.0, total_timeout=4.0, retries=0, backoff=0.01, allow_private_addresses=True)
PUBLIC = "93.184.216.34"


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("10.1.2.3", "private"), ("172.16.0.9", "private"), ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"), ("224.0.0.1", "multicast"), ("240.0.0.1", "reserved"),
    ("0.0.0.0", "unspecified"), ("100.64.0.1", "non-global"), ("::1", "loopback"), ("fe80::1%eth0", "link-local"),
    ("fc00::1", "private"), ("ff02::1", "multicast"), ("::", "unspecified"), ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.1", "private"), ("2002:7f00:1::", "loopback"), ("8.8.8.8", None),
    ("2606:4700:4700::1111", None)])
def test_addresses_outside_the_public_internet_are_named(address, kind):
    assert address_refusal(address) == kind


def reason(cfg, url):
    with Fetcher(cfg, 100_000) as f, pytest.raises(ImageRejected) as info:
        f.fetch(url)
    return info.value


def test_by_default_a_loopback_site_is_refused_before_any_request_and_allowed_on_request():
    with Site() as site:
        refused = reason(GUARDED, site.url("/img/1.jpg"))
        assert refused.reason == "private_address" and "loopback" in str(refused)
        assert reason(GUARDED, site.url("/img/1.jpg").replace("127.0.0.1", "[::ffff:127.0.0.1]")).reason \
            == "private_address"
        assert not site.requests  # not even robots.txt was asked
        with Fetcher(OPEN, 100_000) as f:
            assert f.fetch(site.url("/img/1.jpg"))[:2] == b"\xff\xd8"


def fake_dns(monkeypatch, answers):
    """Resolve the test names through ``answers`` (name -> list of successive answers; the last one repeats)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        queue = answers[host]
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_name_resolving_to_a_private_address_is_refused(monkeypatch):
    fake_dns(monkeypatch, {"photos.internal": ["10.0.0.7"]})
    refused = reason(GUARDED, "http://photos.internal/a.jpg")
    assert refused.reason == "private_address" and "10.0.0.7" in str(refused)


def test_a_dns_answer_that_changes_after_the_check_cannot_reach_the_private_address(monkeypatch):
    cfg = FetchConfig(timeout=2.0, retries=0, robots_txt=False, tdm_rep=False)
    with Site() as site:
        port = site.server.server_address[1]
        fake_dns(monkeypatch, {"rebind.example": [PUBLIC, "127.0.0.1"]})  # public when checked, loopback after
        refused = reason(cfg, f"http://rebind.example:{port}/img/1.jpg")
        assert refused.reason == "private_address" and not site.requests


def test_every_redirect_hop_is_checked(monkeypatch):
    cfg = FetchConfig(timeout=2.0, retries=0, robots_txt=False, tdm_rep=False)
    fake_dns(monkeypatch, {"cdn.example": [PUBLIC]})
    hops = []

    def get_media(self, url):
        hops.append(url)
        return fetch_module._Redirect("http://169.254.169.254/latest/meta-data/")

    monkeypatch.setattr(Fetcher, "_get_media", get_media)
    refused = reason(cfg, "http://cdn.example/a.jpg")
    assert refused.reason == "private_address" and "link-local" in str(refused)
    assert hops == ["http://cdn.example/a.jpg"]  # the redirect target was never requested


def test_robots_crawl_delay_spaces_requests_to_a_site_and_an_excessive_one_is_refused():
    with Site(robots="User-agent: tagsight\nCrawl-delay: 1\n") as site, Fetcher(OPEN, 100_000) as f:
        start = time.monotonic()
        got = f.fetch_all([site.url(f"/img/{i}.jpg") for i in range(3)])
        assert all(isinstance(g, bytes) for g in got)
        times = sorted(site.arrived[f"/img/{i}.jpg"] for i in range(3))
        assert times[1] - times[0] >= 0.9 and times[2] - times[1] >= 0.9 and time.monotonic() - start >= 1.8
    with Site(robots="User-agent: *\nCrawl-delay: 100\n") as site:
        refused = reason(OPEN, site.url("/img/1.jpg"))
        assert refused.reason == "crawl_delay_too_long"
        assert "/img/1.jpg" not in site.requests


def test_the_allowance_is_part_of_what_the_dataset_was_built_with():
    assert GUARDED.content_dict()["allow_private_addresses"] is False
    assert OPEN.content_dict() != GUARDED.content_dict()
    with pytest.raises(ValueError):
        FetchConfig(allow_private_addresses="yes")
    with pytest.raises(ValueError):
        FetchConfig(max_crawl_delay=-1)
