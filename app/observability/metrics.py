"""Prometheus metrics of the service; /metrics serves them (multi-process when
PROMETHEUS_MULTIPROC_DIR is set, e.g. under several uvicorn workers)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

from app import __version__

LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "bookbridge_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "bookbridge_http_request_duration_seconds", "HTTP latency", ["route"], buckets=LATENCY
)
OPERATION_LATENCY = Histogram(
    "bookbridge_graphql_operation_duration_seconds",
    "GraphQL operation latency by operation name and type",
    ["operation", "type"],
    buckets=LATENCY,
)
OPERATION_ERRORS = Counter(
    "bookbridge_graphql_errors_total", "GraphQL errors by operation and code", ["operation", "code"]
)
INGESTED_RECORDS = Counter(
    "bookbridge_ingestion_records_total",
    "Ingested records by entity and outcome (rate() gives records/s)",
    ["entity", "outcome"],
)
INGESTION_BATCHES = Counter(
    "bookbridge_ingestion_batches_total",
    "Ingestion batches by entity and outcome",
    ["entity", "outcome"],
)
DEAD_LETTERS = Gauge(
    "bookbridge_dead_letters",
    "Dead-lettered records stored (read at scrape)",
    multiprocess_mode="max",
)
CACHE_LOOKUPS = Counter(
    "bookbridge_cache_lookups_total", "Cache lookups (hit ratio = hit / all)", ["cache", "result"]
)
RECOMMENDATION_LATENCY = Histogram(
    "bookbridge_recommendation_duration_seconds",
    "Recommendation list latency by strategy",
    ["strategy"],
    buckets=LATENCY,
)
JOB_DURATION = Histogram(
    "bookbridge_worker_job_duration_seconds",
    "Worker job durations",
    ["job", "status"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)
LAST_SUCCESS = Gauge(
    "bookbridge_ingestion_last_success_timestamp_seconds",
    "Unix time of the last committed batch that accepted records, by entity",
    ["entity"],
    multiprocess_mode="max",
)
POOL_IN_USE = Gauge(
    "bookbridge_db_pool_connections_in_use",
    "Database connections checked out of the pool (read at scrape)",
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "bookbridge_db_pool_waiting",
    "Callers waiting for a database connection (read at scrape)",
    multiprocess_mode="livesum",
)
READY = Gauge(
    "bookbridge_ready",
    "1 when the database (and Redis when configured) answered at the last scrape, else 0",
    multiprocess_mode="livemin",
)
BUILD_INFO = Gauge(
    "bookbridge_build_info",
    "Always 1; the version label is the running release",
    ["version"],
    multiprocess_mode="max",
)
BUILD_INFO.labels(__version__).set(1)
REFUSALS = Counter("bookbridge_refusals_total", "Requests refused cheaply, by reason", ["reason"])
SPANS_DROPPED = Counter(
    "bookbridge_spans_dropped_total",
    "Sampled spans the batch span processor dropped: queue_full, already_shutdown",
    ["reason"],
)
RECO_VALIDATION_NDCG = Gauge(
    "bookbridge_reco_validation_ndcg",
    "Validation NDCG@10 of each collaborative candidate in the last lists job",
    ["candidate"],
    multiprocess_mode="max",
)
RECO_FIT_SECONDS = Gauge(
    "bookbridge_reco_fit_seconds",
    "Validation fit time of each collaborative candidate in the last lists job",
    ["candidate"],
    multiprocess_mode="max",
)
RECO_MODEL = Gauge(
    "bookbridge_reco_model_chosen",
    "1 for the collaborative model the last lists job chose, 0 for the others it tried",
    ["model"],
    multiprocess_mode="max",
)
RECO_WEIGHT = Gauge(
    "bookbridge_reco_hybrid_weight",
    "HYBRID weight of each component chosen by the last lists job's validation",
    ["component"],
    multiprocess_mode="max",
)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class OperationNames:
    """Bounds the label values clients choose: the first N valid names, then 'other'."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def label(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        if name in self.seen:  # valid: only names that matched are kept
            return name
        if not _NAME.match(name):
            return "invalid"
        if len(self.seen) >= self.limit:
            return "other"
        self.seen.add(name)
        return name


def record_batch(entity: str, outcome: str, counts: Mapping[str, int]) -> None:
    """Count a batch; one that committed and accepted records also sets the entity's last
    success time. Outcomes: applied, partial, replayed; refused (the caller's error) and failed
    (anything else) raised, so nothing committed."""
    INGESTION_BATCHES.labels(entity, outcome).inc()
    for name, count in counts.items():
        if count:
            INGESTED_RECORDS.labels(entity, name).inc(count)
    accepted = sum(n for name, n in counts.items() if name != "rejected")
    if outcome not in ("failed", "refused") and accepted:
        LAST_SUCCESS.labels(entity).set(time.time())


def observe_pool(in_use: int, waiting: int) -> None:
    """The pool as read at scrape time: connections checked out, callers waiting for one."""
    POOL_IN_USE.set(in_use)
    POOL_WAITING.set(waiting)


def cache_lookup(cache: str, *, hit: bool) -> None:
    CACHE_LOOKUPS.labels(cache, "hit" if hit else "miss").inc()


def observe_recommendation(strategy: str, seconds: float) -> None:
    RECOMMENDATION_LATENCY.labels(strategy).observe(seconds)


def observe_job(job: str, status: str, seconds: float) -> None:
    JOB_DURATION.labels(job, status).observe(seconds)


def observe_selection(
    model: str,
    validation_ndcg: Mapping[str, float],
    fit_seconds: Mapping[str, float],
    weights: Mapping[str, float] | None,
) -> None:
    """The lists job's model selection: candidates' scores and fit times, the choice, weights."""
    for candidate, value in validation_ndcg.items():
        RECO_VALIDATION_NDCG.labels(candidate).set(value)
    for candidate, value in fit_seconds.items():
        RECO_FIT_SECONDS.labels(candidate).set(value)
    for name in {c.split(":", 1)[0] for c in validation_ndcg} | {model}:
        RECO_MODEL.labels(name).set(1.0 if name == model else 0.0)
    for component, value in (weights or {}).items():
        RECO_WEIGHT.labels(component).set(value)


def refused(reason: str) -> None:
    REFUSALS.labels(reason).inc()


def exposition() -> tuple[bytes, str]:
    """The text format of every metric (of every worker process when multi-process)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
