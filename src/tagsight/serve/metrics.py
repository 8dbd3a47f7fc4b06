"""Prometheus metrics of one server (prometheus-client, in a registry of its own, not the global one).

- ``tagsight_requests_total{endpoint, status}``: answered requests by route template and status;
- ``tagsight_request_seconds{endpoint}``: request latency histogram (the whole request, body read to answer);
- ``tagsight_rejections_total{reason}``: error answers by reason code;
- ``tagsight_batch_size{app}`` and ``tagsight_predict_seconds{app}``: size and time of every predict call;
- ``tagsight_queue_depth{app}``: requests waiting for a batch, read at scrape time;
- ``tagsight_apps_loaded`` and ``tagsight_reloads_total{outcome}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, disable_created_metrics, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class _QueueDepth:
    """A collector reading the live queue depths at scrape time."""

    def __init__(self, depths: Callable[[], Mapping[str, int]]) -> None:
        self._depths = depths

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("tagsight_queue_depth", "requests waiting for a batch", labels=["app"])
        for app, depth in sorted(self._depths().items()):
            family.add_metric([app], depth)
        yield family


class Metrics:
    """The server's metrics; ``render()`` is the ``/metrics`` body in the Prometheus text format."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, depths: Callable[[], Mapping[str, int]]) -> None:
        disable_created_metrics()  # no *_created series: they double the exposition for nothing
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("tagsight_requests", "answered HTTP requests", ["endpoint", "status"], registry=r)
        self.latency = Histogram("tagsight_request_seconds", "HTTP request latency", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.rejections = Counter("tagsight_rejections", "error answers by reason code", ["reason"], registry=r)
        self.batch_size = Histogram("tagsight_batch_size", "images per predict call", ["app"],
                                    buckets=BATCH_BUCKETS, registry=r)
        self.predict_seconds = Histogram("tagsight_predict_seconds", "time of one predict call", ["app"],
                                         buckets=LATENCY_BUCKETS, registry=r)
        self.apps_loaded = Gauge("tagsight_apps_loaded", "apps being served", registry=r)
        self.reloads = Counter("tagsight_reloads", "admin reloads by outcome", ["outcome"], registry=r)
        r.register(_QueueDepth(depths))

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def observe_batch(self, app: str, size: int, seconds: float) -> None:
        self.batch_size.labels(app).observe(size)
        self.predict_seconds.labels(app).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
