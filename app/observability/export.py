"""The OTLP/HTTP protobuf span exporter tracing uses: the SDK exporter's configuration, retries
and transport (`requests`), with our encoder (`otlp.encode`, about a third of the SDK encoder's
CPU a span; the batch processor's thread runs it, never the event loop).

It reads the OTEL_EXPORTER_OTLP_* variables as the SDK's `OTLPSpanExporter` does: the traces
endpoint as given, else the base endpoint + `/v1/traces` (default http://localhost:4318);
headers (`k=v,...`, URL-encoded), timeout in seconds (default 10), compression (gzip, deflate,
none), the CA certificate and client certificate/key; proxies, CA bundle and netrc from the
process environment as `requests` reads them, once. A batch that fails with 429, 502, 503,
504 or a connection error is sent again after 1, 2, 4, ... s (+-20% jitter, or the server's
Retry-After) while the timeout allows, at most 6 attempts, and not once shutdown has begun.
"""

from __future__ import annotations

import gzip
import logging
import os
import random
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from importlib.metadata import version

import requests
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.util.re import parse_env_headers

from app.observability import otlp

log = logging.getLogger(__name__)

RETRYABLE = frozenset({429, 502, 503, 504})
MAX_ATTEMPTS = 6
JITTER = 0.2
_DEFAULT_ENDPOINT = "http://localhost:4318"
_ENCODINGS = {"gzip": "gzip", "deflate": "deflate", "none": "", "": ""}


def _setting(env: Mapping[str, str], name: str) -> str:
    """OTEL_EXPORTER_OTLP_TRACES_<name>, else OTEL_EXPORTER_OTLP_<name>, else ''."""
    return env.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or env.get(f"OTEL_EXPORTER_OTLP_{name}", "")


def endpoint(env: Mapping[str, str]) -> str:
    """The traces URL: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, else
    OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318) + /v1/traces."""
    if found := env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return found
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or _DEFAULT_ENDPOINT
    return f"{base.removesuffix('/')}/v1/traces"


def timeout(env: Mapping[str, str]) -> float:
    raw = _setting(env, "TIMEOUT") or "10"
    try:
        return float(raw)
    except ValueError:
        log.warning("Invalid OTLP timeout %r, using 10 seconds", raw)
        return 10.0


def compression(env: Mapping[str, str]) -> str:
    """The Content-Encoding to send: 'gzip', 'deflate' or '' (none)."""
    raw = _setting(env, "COMPRESSION").strip().lower()
    if raw not in _ENCODINGS:
        log.warning("Unsupported OTLP compression %r, sending uncompressed", raw)
        return ""
    return _ENCODINGS[raw]


def headers(env: Mapping[str, str]) -> dict[str, str]:
    found = {
        "content-type": "application/x-protobuf",
        "user-agent": "OTel-OTLP-Exporter-Python/"
        + version("opentelemetry-exporter-otlp-proto-http"),
    }
    found.update(parse_env_headers(_setting(env, "HEADERS"), liberal=True))
    return found


def retry_after(response: requests.Response) -> float | None:
    """The seconds a Retry-After header asks for (a number or an HTTP date), None without one."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class OTLPExporter(SpanExporter):
    """Spans to an OTLP/HTTP collector as protobuf, configured by `env` (default os.environ).
    It encodes our lean spans (`recording.Recording`) as they are: `batch.BatchProcessor`
    hands them over without a `ReadableSpan` of each."""

    reads_recordings = True

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.endpoint = endpoint(env)
        self.timeout = timeout(env)
        self.encoding = compression(env)
        self.headers = headers(env)
        if self.encoding:
            self.headers.setdefault("content-encoding", self.encoding)
        self.session = requests.Session()
        self.session.verify = _setting(env, "CERTIFICATE") or True
        certificate, key = _setting(env, "CLIENT_CERTIFICATE"), _setting(env, "CLIENT_KEY")
        if certificate:
            self.session.cert = (certificate, key) if key else certificate
        # the process environment's proxies (HTTP(S)_PROXY, NO_PROXY), CA bundle
        # (REQUESTS_CA_BUNDLE) and ~/.netrc for the endpoint, resolved once as requests
        # resolves them: it would otherwise read them again on every POST (os.environ scanned,
        # the netrc file looked up), about a third of an export's CPU (docs/performance.md)
        found = self.session.merge_environment_settings(
            self.endpoint, {}, None, self.session.verify, self.session.cert
        )
        self.session.proxies = found["proxies"]
        self.session.verify = found["verify"]
        self.session.cert = found["cert"]
        if netrc := requests.utils.get_netrc_auth(self.endpoint):
            self.session.auth = netrc
        self.session.trust_env = False
        self.stopping = threading.Event()

    def compress(self, data: bytes) -> bytes:
        if self.encoding == "gzip":
            return gzip.compress(data)
        if self.encoding == "deflate":
            return zlib.compress(data)
        return data

    def post(self, data: bytes, seconds: float) -> requests.Response:
        """One POST; a connection error is retried once at once (a stale pooled connection)."""
        deadline = time.monotonic() + seconds
        try:
            return self.session.post(
                self.endpoint, data=data, headers=self.headers, timeout=seconds
            )
        except requests.ConnectionError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            return self.session.post(self.endpoint, data=data, headers=self.headers, timeout=left)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.stopping.is_set():
            log.warning("OTLP exporter shut down; %d spans not sent", len(spans))
            return SpanExportResult.FAILURE
        try:
            data = self.compress(otlp.encode(spans))
        except Exception:  # a value the encoder refuses: the batch is lost, not the thread
            log.exception("Failed to encode %d spans", len(spans))
            return SpanExportResult.FAILURE
        deadline = time.monotonic() + self.timeout
        for attempt in range(MAX_ATTEMPTS):
            wait = 2**attempt * random.uniform(1 - JITTER, 1 + JITTER)
            error: object
            try:
                response = self.post(data, max(deadline - time.monotonic(), 0.0))
            except requests.ConnectionError as exc:
                error, retry = exc, True
            except requests.RequestException as exc:
                error, retry = exc, False
            else:
                if 200 <= response.status_code < 400:
                    return SpanExportResult.SUCCESS
                error = f"{response.status_code} {response.reason}"
                retry = response.status_code in RETRYABLE
                if retry and (asked := retry_after(response)) is not None:
                    wait = asked
            if not retry:
                log.error("Failed to export %d spans: %s", len(spans), error)
                return SpanExportResult.FAILURE
            last = attempt + 1 == MAX_ATTEMPTS
            if last or wait > deadline - time.monotonic() or self.stopping.is_set():
                log.error(
                    "Failed to export %d spans (timeout, retries or shutdown): %s",
                    len(spans),
                    error,
                )
                return SpanExportResult.FAILURE
            log.warning("Transient error %s exporting spans, retrying in %.2fs", error, wait)
            if self.stopping.wait(wait):
                log.warning("Shutdown in progress, aborting retry")
                break
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.stopping.set()
        self.session.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True  # nothing is buffered here: the batch processor holds the queue
