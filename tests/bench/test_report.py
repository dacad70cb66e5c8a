"""results.json and RESULTS.md: uncached reads first, cached twins, ratios from the same repeats."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from bench import driver, measure, report, scenarios


def run(rps: float, p99: float = 10.0) -> driver.Run:
    return driver.Run(
        requests=int(rps * 4),
        seconds=4.0,
        throughput_rps=rps,
        p50_ms=p99 / 2,
        p99_ms=p99,
        bad=0,
        sql_per_request=1.0,
        client_cpu=0.1,
        server_cpu_us=500.0,
    )


def test_ratios_are_medians_of_the_per_repeat_ratios() -> None:
    mine = [run(100), run(50), run(90)]
    raws = [run(200), run(50), run(100)]
    peers = [run(50), run(50), run(30)]
    row = measure.summarize("catalog_page", 32, (mine, (120.0, 110.0)), (raws, None), (peers, None))
    assert row["throughput_rps"] == 90.0
    assert row["ratio"] == 0.9  # per repeat: 0.5, 1.0, 0.9
    assert row["ratio_postgraphile"] == 2.0  # per repeat: 2.0, 1.0, 3.0
    assert (row["peak_rss_mb"], row["rss_after_mb"]) == (120.0, 110.0)
    assert row["cpu_us_per_request"] == 500.0 and row["sql_per_request"] == 1.0
    alone = measure.summarize("student_home", 32, (mine, None), ([], None), ([], None))
    assert alone["ratio"] is None and alone["ratio_postgraphile"] is None


def row(name: str, rps: float) -> dict[str, Any]:
    got = measure.summarize(
        name, 32, ([run(rps)], (100.0, 90.0)), ([run(rps * 2)], None), ([], None)
    )
    return got | {"variant": ""}


def test_results_show_uncached_reads_first_then_cached_then_ingestion(tmp_path: Path) -> None:
    rows = [row(n, 10) for n in ("catalog_page", "student_home", "recommendations_cached")]
    rows += [row("catalog_page_cached", 1000), row("upsert_books", 5000)]
    args = {"large": False, "workers": 1, "repeat": 3, "duration": 4.0, "redis_url": None}
    memory = {"uncached": {"peak_rss_mb": 150.0, "rss_mb": 140.0}}
    report.write(tmp_path, rows, [], {"postgraphile": "npm missing"}, args, memory)
    text = (tmp_path / "RESULTS.md").read_text()
    headline = text.index("## Reads, response cache off")
    cached = text.index("## Reads, response cache on")
    ingestion = text.index("## Ingestion")
    assert headline < cached < ingestion
    assert headline < text.index("| recommendations_cached |") < cached
    assert cached < text.index("| catalog_page_cached |") < ingestion
    assert "uncached: RSS 140.0 MB" in text and "postgraphile: not measured: npm missing" in text
    stored = json.loads((tmp_path / "results.json").read_text())
    assert [s["name"] for s in stored["scenarios"]] == [r["name"] for r in rows]
    assert set(report.FIELDS) <= set(stored["scenarios"][0])
    assert stored["run"]["worker_memory_after_pass"] == memory


def test_issue_targets_are_checked_against_the_run() -> None:
    fast = row("catalog_page", 100) | {"ratio_postgraphile": 1.6, "sql_per_request": 1.0}
    slow = row("book_by_id", 10) | {"ratio_postgraphile": None}
    home = row("student_home", 10) | {"p99_ms": 120.0}
    cold = row("recommendation_cold", 10) | {"p99_ms": 49.0}
    hot = row("recommendation_hot", 10) | {"p99_ms": 12.0}
    traced = row("deep", 10) | {"vs_untraced": 0.85, "variant": "tracing_0.1"}
    memory = {"uncached": {"peak_rss_mb": 320.0, "rss_mb": 280.0}}
    got = {
        c["target"]: c["met"]
        for c in report.targets([fast, slow, home, cold, hot], memory, [traced])
    }
    assert got["catalog_page >= 0.5x raw"] is True  # 100 / 200 per repeat
    assert got["catalog_page >= 1.5x PostGraphile"] is True
    assert got["catalog_page SQL/req == 1"] is True
    assert got["book_by_id >= 1.5x PostGraphile"] is None  # the peer did not run
    assert got["student_home p99 < 100 ms"] is False
    assert got["recommendation_cold p99 < 50 ms (1 client)"] is True
    assert got["recommendation_hot p99 < 10 ms (1 client)"] is False
    assert got["worker RSS after the uncached pass < 300 MB"] is True
    assert got["deep traced at 0.1 keeps >= 0.9 of its throughput"] is False


def test_the_traced_targets_show_their_interval_and_whether_it_settles_them(
    tmp_path: Path,
) -> None:
    def traced(name: str, kept: float, low: float, high: float, variant: str) -> dict[str, Any]:
        got = row(name, 10) | {"vs_untraced": kept, "variant": variant}
        got["_detail"]["vs_untraced_interval"] = [low, high]
        return got

    variants = [
        traced("deep_cached", 0.95, 0.92, 0.98, "tracing_0.1"),
        traced("book_by_id_cached", 0.93, 0.86, 0.99, "tracing_0.1"),
        traced("recommendation_hot", 0.8, 0.75, 0.85, "tracing_0.1"),
        traced("deep", 0.97, 0.94, 1.02, "untraced_aa"),
        traced("book_by_id", 0.9, 0.85, 0.95, "untraced_aa"),
    ]
    checks = {c["target"]: c for c in report.targets([], {}, variants)}
    assert checks["deep A/A: 1.0 within the 90% interval"]["met"] is True
    assert checks["book_by_id A/A: 1.0 within the 90% interval"]["met"] is False
    assert "deep traced at 0.1 keeps >= 0.9 of its throughput" not in checks  # A/A rows only
    args = {"large": False, "workers": 1, "repeat": 2, "duration": 4.0, "redis_url": None}
    report.write(tmp_path, [row("deep_cached", 10)], variants, {}, args)
    text = (tmp_path / "RESULTS.md").read_text()
    assert (
        "| deep_cached traced at 0.1 keeps >= 0.9 of its throughput | 0.95 (90%: 0.92-0.98) |"
        " met (90% interval on the same side) |" in text
    )
    assert "| 0.93 (90%: 0.86-0.99) | met (not shown: the 90% interval spans 0.9) |" in text
    assert "| 0.8 (90%: 0.75-0.85) | **missed** (90% interval on the same side) |" in text
    assert "| untraced_aa | deep |" in text and "| 0.94-1.02 |" in text
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored["variants"][0]["vs_untraced_interval"] == [0.92, 0.98]


def test_a_cold_scenario_never_sends_a_body_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every wrk run (warm-ups too) of a `fresh` scenario gets bodies of its own, at the
    scenario's concurrency; the last body (sent by the JSON check) is never measured."""
    sent: list[tuple[list[bytes], int]] = []
    scripts: dict[str, list[bytes]] = {}

    def write_script(bodies: list[bytes], *_: Any) -> Path:
        path = Path(f"/nonexistent/script-{len(scripts)}.lua")
        scripts[str(path)] = bodies
        return path

    def wrk(base: str, script: Path, concurrency: int, seconds: float) -> driver.Run:
        sent.append((scripts[str(script)], concurrency))
        return run(10)

    monkeypatch.setattr(measure.driver, "write_script", write_script)
    monkeypatch.setattr(measure.driver, "wrk", wrk)
    monkeypatch.setattr(measure.servers, "reset_peak", lambda base: None)
    monkeypatch.setattr(measure.servers, "memory_mb", lambda base: None)
    bodies = [str(i).encode() for i in range(101)]
    scenario = scenarios.Scenario("recommendation_cold", bodies, None, concurrency=1, fresh=True)
    args = argparse.Namespace(repeat=2, warmup=1.0, duration=4.0, concurrency=32)
    got, traced = measure.measure(args, scenario, measure.Servers("http://app", "http://raw"))
    assert traced is None and got["concurrency"] == 1 and len(sent) == 4
    everything = [b for part, _ in sent for b in part]
    assert len(everything) == len(set(everything)) == 100 and b"100" not in everything
    assert {c for _, c in sent} == {1}


def test_the_first_server_changes_from_repeat_to_repeat() -> None:
    orders = [measure.turns(["app", "raw", "peer"], i) for i in range(4)]
    assert orders == [
        ["app", "raw", "peer"],
        ["raw", "peer", "app"],
        ["peer", "app", "raw"],
        ["app", "raw", "peer"],
    ]


def test_the_traced_comparison_takes_turns_abba_in_one_second_slices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After its own warm-up, the traced server (b) and the untraced one (a) take turns in
    1 s slices, ABBA then BAAB, the next repeat the other way round; each is measured about
    `duration` seconds a repeat."""
    calls: list[tuple[str, str, float]] = []

    def wrk(base: str, script: Path, concurrency: int, seconds: float) -> driver.Run:
        calls.append((base, script.name, seconds))
        return run(100)

    monkeypatch.setattr(measure.driver, "wrk", wrk)
    args = argparse.Namespace(repeat=2, warmup=2.0, duration=4.0)
    scripts = (Path("warm"), Path("measured"))
    first = measure.interleave(args, "a", "b", scripts, 32, 0)
    assert calls[0] == ("b", "warm", 2.0)
    assert [c[0] for c in calls[1:]] == list("abbabaab")
    assert {c[1:] for c in calls[1:]} == {("measured", 1.0)}
    assert [(s.server, s.block) for s in first] == [(w, i // 4) for i, w in enumerate("abbabaab")]
    second = measure.interleave(args, "a", "b", scripts, 32, 1)
    assert "".join(s.server for s in second) == "baababba"
    assert {s.block for s in second} == {2, 3} and {s.repeat for s in second} == {1}
    assert all(s.run.sql_per_request == 1.0 for s in first if s.server == "b")
    calls.clear()
    longer = argparse.Namespace(repeat=2, warmup=0.0, duration=4.0, tracing_seconds=8.0)
    third = measure.interleave(longer, "a", "b", scripts, 32, 0)
    assert "".join(s.server for s in third) == "abbabaab" * 2 and len(calls) == 16


def test_the_traced_ratio_is_requests_over_seconds_summed_over_the_slices() -> None:
    def timed(requests: int, seconds: float, cpu: float) -> driver.Run:
        return dataclasses.replace(
            run(requests / seconds), requests=requests, seconds=seconds, server_cpu_us=cpu
        )

    # a: 1,000 req/s throughout; b: 900 then 950 req/s (slices of unequal length count by time)
    slices = [
        measure.Slice("a", 0, 0, timed(1000, 1.0, 100.0)),
        measure.Slice("b", 0, 0, timed(900, 1.0, 110.0)),
        measure.Slice("b", 0, 0, timed(1900, 2.0, 110.0)),
        measure.Slice("a", 0, 0, timed(1000, 1.0, 100.0)),
        measure.Slice("b", 1, 1, timed(900, 1.0, 110.0)),
        measure.Slice("a", 1, 1, timed(2000, 2.0, 100.0)),
        measure.Slice("a", 1, 1, timed(1000, 1.0, 100.0)),
        measure.Slice("b", 1, 1, timed(900, 1.0, 110.0)),
    ]
    row = measure.summarize(
        "deep_cached", 32, (measure.per_repeat(slices, "b"), None), *[([], None)] * 2
    )
    measure.vs_untraced_slices(row, slices)
    assert row["vs_untraced"] == round((4600 / 5.0) / 1000, 3) == 0.92
    detail = row["_detail"]
    assert detail["vs_untraced"] == [round(2800 / 3 / 1000, 3), 0.9]  # per ABBA block
    assert detail["vs_untraced_pairs"] == [0.9, 0.95, 0.9, 0.9]
    low, high = detail["vs_untraced_interval"]
    assert 0.9 <= low <= 0.92 <= high <= 0.95
    assert detail["cpu_per_request_vs_untraced"] == 1.1
    assert detail["cpu_per_request_vs_untraced_runs"] == [1.1, 1.1]
    assert detail["runs"] == [933.3, 900.0] and row["throughput_rps"] == 916.7  # per repeat
    assert row["cpu_us_per_request"] == 110.0
