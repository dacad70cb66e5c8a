"""Process tuning for serving: fewer, cheaper garbage collections (measured in bench/)."""

from __future__ import annotations

import gc

# A GraphQL response of a few thousand fields allocates tens of thousands of objects, nearly
# all freed by reference counting; CPython's default gen-0 threshold (700) then runs a
# collection every few fields and full ones that rescan every live object of every request in
# flight. At 16 concurrent catalog pages: 17 ms of collector pauses per request by default,
# 1.3 ms with these thresholds (bench: docs/performance.md).
THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Raise the collector's thresholds and freeze what start-up allocated (never garbage)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
