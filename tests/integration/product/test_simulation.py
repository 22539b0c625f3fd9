"""bench/simulation.py at its small size, so the benchmark cannot rot: every call it places is accounted for.

Two fake switches in processes of their own, 200 seats, 100 calls on the line, the app process (the product's
composition) on SQLite. No duration is asserted (benchmarks are not tests): counts only.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_small_simulation_accounts_for_every_call():
    """Should end every call it places, leave nothing in the app (no caller waiting, no agent in a call), file
    a ticket for every complaint recorded to the end, and bring callers to agents."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "simulation.py"), "--switches", "2", "--agents",
                           "200", "--steps", "100", "--scale", "0.03", "--hold", "3", "--drain-timeout", "20",
                           "--json"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
    totals, rows = result["totals"], result["rows"]
    assert len(rows) == 1 and rows[0]["level"] == 100
    assert totals["placed"] >= 100
    assert totals["ended"] == totals["placed"] and totals["not_ended"] == 0, totals
    assert sum(totals["kinds"].values()) == totals["placed"]
    assert totals["left_in_app"] == {"active": 0, "waiting": 0, "in_call": 0}, totals
    assert totals["bridged"] > 0
    assert totals["tickets"] >= totals["complaints_done"] > 0, totals
