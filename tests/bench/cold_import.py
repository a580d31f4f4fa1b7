"""Cold import time of every function's Lambda handler, beside a bare FastAPI + Mangum app.

Each sample is a fresh interpreter (as a Lambda cold start is); the time is measured
inside the child around the import alone, so interpreter start-up is excluded from both.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

from guildstack.devstack.template import Template

REPO = Path(__file__).resolve().parents[2]
BASELINE = "import fastapi, mangum; mangum.Mangum(fastapi.FastAPI(), lifespan='off')"
# Targets from the issues; functions without one are reported, not judged.
TARGETS = {"AuthFunction": 1.3, "AgentsFunction": 1.15}

PROBE = """
import os, sys, time
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Guildstack")
started = time.perf_counter()
exec(sys.argv[1])
print(time.perf_counter() - started)
"""


def sample(statement: str, runs: int) -> list[float]:
    """Seconds taken by `statement` in `runs` fresh interpreters (after one warm-up)."""
    timings = []
    for n in range(runs + 1):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, statement],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if n:  # the first run only warms the .pyc cache, as Lambda's packaged bytecode
            timings.append(float(out.strip().splitlines()[-1]))
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)

    template = Template.load(REPO / "template.yaml")
    baseline = statistics.median(sample(BASELINE, args.runs))
    print(f"## Cold import of each handler (median of {args.runs} fresh processes)\n")
    print("| function | handler | median ms | baseline ms | ratio | target | verdict |")
    print("|---|---|---:|---:|---:|---:|---|")
    for spec in template.functions:
        module, attribute = spec.handler.rsplit(".", 1)
        statement = f"from {module} import {attribute}"
        median = statistics.median(sample(statement, args.runs))
        ratio = median / baseline
        target = TARGETS.get(spec.logical_id)
        verdict = "-" if target is None else ("pass" if ratio <= target else "MISS")
        target_text = f"{target:.2f}x" if target else "-"
        print(
            f"| {spec.logical_id} | `{spec.handler}` | {median * 1000:.0f} | "
            f"{baseline * 1000:.0f} | {ratio:.2f}x | {target_text} | {verdict} |"
        )
    print(f"\nbaseline: `{BASELINE}`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
