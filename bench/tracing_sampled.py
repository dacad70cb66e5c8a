"""What one sampled request's span costs, in process, by piece: the HTTP middleware's root span
as a response-cache hit makes it (its only span: a name, SERVER kind, three attributes), every
root sampled (`parentbased_traceidratio` at 0.99999, as `spans.span` decides it), through the
provider `tracing.make_provider` builds, exported by OTLP/HTTP to a local sink that drops them.

    python -m bench.tracing_sampled [--chunks 20] [--rounds 5]

Per round: `chunks` times, 500 spans started and ended (the span work: CPU of the process while
the loop runs, the export thread kept asleep by a long schedule delay), then `force_flush` (the
encoding and the POST, on this thread; the sink is a thread of this process, so its reading of
the request counts too). Then the encoding alone: 512 spans as the exporter receives them,
encoded 20 times. Medians of the rounds, microseconds a span. Runs from any tree (the pieces it
uses are public since trace5), so a before/after pair is the same command with another
PYTHONPATH."""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.trace import SpanKind

from bench import sink

ATTRIBUTES = {"http.request.method": "POST", "http.route": "/graphql"}


class Keep:
    """An exporter that keeps what it is given (what the OTLP exporter would encode)."""

    reads_recordings = True  # as the OTLP exporter: our lean spans as they are, where supported

    def __init__(self) -> None:
        self.got: list[Any] = []

    def export(self, spans: Sequence[Any]) -> int:
        self.got.extend(spans)
        return 0

    def shutdown(self) -> None:
        return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--chunks", type=int, default=20)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    with sink.otlp_sink() as endpoint:
        env = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.99999",
            "OTEL_BSP_SCHEDULE_DELAY": "600000",  # the thread asleep: flushes are ours
            "OTEL_BSP_MAX_QUEUE_SIZE": "4096",
        }
        os.environ.update(env)
        from app.observability import otlp, spans, tracing

        provider = tracing.make_provider(env)
        assert provider is not None
        tracer = spans.tracer("bookbridge.http", provider)

        def loop(count: int, tracer: Any = tracer) -> None:
            for _ in range(count):
                with spans.span(
                    tracer, "POST /graphql", ATTRIBUTES, SpanKind.SERVER, None, quiet=True
                ) as found:
                    found.set_attribute("http.response.status_code", 200)

        loop(2000)
        provider.force_flush()
        work: list[float] = []
        flush: list[float] = []
        for _ in range(args.rounds):
            gc.collect()
            spent = flushed = 0.0
            for _ in range(args.chunks):
                started = time.process_time()
                loop(500)
                ended = time.process_time()
                provider.force_flush()
                spent += ended - started
                flushed += time.process_time() - ended
            work.append(spent / (args.chunks * 500) * 1e6)
            flush.append(flushed / (args.chunks * 500) * 1e6)
        kept = Keep()
        other = tracing.make_provider(env, kept)  # type: ignore[arg-type]
        assert other is not None
        loop(512, spans.tracer("bookbridge.http", other))
        other.force_flush()
        encode: list[float] = []
        for _ in range(args.rounds):
            started = time.process_time()
            for _ in range(20):
                otlp.encode(kept.got)
            encode.append((time.process_time() - started) / (20 * len(kept.got)) * 1e6)
        for label, found in (
            ("span work", work),
            ("flush (encode + POST)", flush),
            (f"encode alone ({type(kept.got[0]).__name__})", encode),
        ):
            print(
                f"{label:34} {statistics.median(found):6.2f} us/span {[round(x, 2) for x in found]}"
            )
        provider.shutdown()
        other.shutdown()


if __name__ == "__main__":
    main()
