"""``python benchmarks/bench.py --quick --json`` runs and reports every scenario of the performance
issue (the numbers are not checked: CI machines vary)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"
SCENARIOS = {"throughput_1_hook", "throughput_100_nodes", "throughput_persistent", "catch_up", "python_file",
             "latency_p50", "latency_p99", "journal_frame", "journal_memory", "kernel_p99", "widget_redraws",
             "throughput_tls", "cli_start", "dask_cpu_hook", "resume", "hooks_10k", "memory_per_hooked_node",
             "memory_per_hook", "dispatch_10k", "start_10k", "parse_floor"}


def test_quick_bench_reports_every_scenario(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--json"],
                          capture_output=True, text=True, timeout=400, cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]  # 1: a target missed, still a full report
    report = json.loads(proc.stdout)
    rows = {row["id"]: row for row in report["rows"]}
    assert set(rows) == SCENARIOS
    for row in rows.values():
        assert row["hooknb"] > 0 and row["target"] and row["scenario"]
        assert row["passed"] in (True, False, None)
    assert report["quick"] is True and report["machine"]["cpus"] >= 1
    assert {stage["thread"] for stage in report["stages"]} >= {"hooknb-loop", "hooknb-hook"}
