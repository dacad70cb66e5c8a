"""Process tuning for serving: fewer, cheaper garbage collections (measured in bench/)."""

from __future__ import annotations

import gc
import os

# A GraphQL response of a few thousand fields allocates tens of thousands of objects, nearly
# all freed by reference counting; CPython's default gen-0 threshold (700) then runs a
# collection every few fields and full ones that rescan every live object of every request in
# flight. At 16 concurrent catalog pages: 17 ms of collector pauses per request by default,
# 1.3 ms with a gen-0 threshold of 50,000. But each request leaves ~160 objects in reference
# cycles (DataLoader batches, futures), so at 50,000 a collection every ~300 requests frees
# ~52,000 objects and pauses 50-90 ms: that was the p99 of recommendations. At 5,000, side by
# side (docs/performance.md): recommendations p99 68 -> 14 ms cached, 61 -> 32 ms uncached, and
# the catalog page at 32 clients unchanged within noise. Since then those cycles are gone
# (graphql_schema/execution.py, loaders/base.py): a request's objects are freed by reference
# counting, and at one client the collector ran twice in 12 s, at 5,000 or at 50,000 alike
# (`python -m bench ... --concurrency 1`, docs/performance.md). BOOKBRIDGE_GC_THRESHOLD overrides.
THRESHOLDS = (5_000, 20, 100)


def tune_gc() -> None:
    """Raise the collector's thresholds and freeze what start-up allocated (never garbage)."""
    gc.collect()
    gc.freeze()
    first = int(os.environ.get("BOOKBRIDGE_GC_THRESHOLD", THRESHOLDS[0]))
    gc.set_threshold(first, *THRESHOLDS[1:])
