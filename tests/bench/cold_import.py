"""Cold import time of every function's Lambda handler, beside a bare FastAPI + Mangum app.

Each sample is a fresh interpreter (as a Lambda cold start is); the time is measured
inside the child around the import alone, so interpreter start-up is excluded from all.

Two baselines are printed. An app with no routes at all never pays FastAPI's own
first-route cost: since 0.119, creating the first route with a pydantic model imports
`pydantic.v1` (a compatibility probe, ~90 ms here). Any app that serves anything pays
it, so verdicts are judged against the bare app with one typed route; the ratio to the
empty app is printed beside it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

from guildstack.devstack.template import Template

REPO = Path(__file__).resolve().parents[2]
EMPTY_APP = "import fastapi, mangum; mangum.Mangum(fastapi.FastAPI(), lifespan='off')"
ONE_ROUTE_APP = (
    "import fastapi, mangum, pydantic\n"
    "class Health(pydantic.BaseModel):\n    status: str\n"
    "app = fastapi.FastAPI()\n"
    "@app.get('/health')\n"
    "async def health() -> Health:\n    return Health(status='ok')\n"
    "mangum.Mangum(app, lifespan='off')"
)
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


def _once(statement: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, statement],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def paired(statement: str, baseline: str, runs: int) -> tuple[list[float], list[float]]:
    """Seconds taken by `statement` and by `baseline`, alternating in fresh interpreters, so
    a machine that speeds up or slows down during the bench affects both alike. The first
    pair only warms the .pyc cache, as Lambda's packaged bytecode."""
    _once(statement), _once(baseline)
    timings: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        timings[0].append(_once(statement))
        timings[1].append(_once(baseline))
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)

    template = Template.load(REPO / "template.yaml")
    empty_samples, one_route_samples = paired(EMPTY_APP, ONE_ROUTE_APP, args.runs)
    empty, one_route = statistics.median(empty_samples), statistics.median(one_route_samples)
    print(f"## Cold import of each handler (median of {args.runs} fresh processes)\n")
    print(f"empty app {empty * 1000:.0f} ms, one-route app {one_route * 1000:.0f} ms (paired)\n")
    print(
        "| function | handler | median ms | one-route app ms (paired) | ratio | ratio IQR"
        " | ratio to empty | target | verdict |"
    )
    print("|---|---|---:|---:|---:|---|---:|---:|---|")
    for spec in template.functions:
        if spec.handler.endswith(".sh"):  # Web Adapter: uvicorn imports the app module
            statement = f"from {spec.app_module} import app"
        else:
            module, attribute = spec.handler.rsplit(".", 1)
            statement = f"from {module} import {attribute}"
        own, base = paired(statement, ONE_ROUTE_APP, args.runs)
        median, baseline = statistics.median(own), statistics.median(base)
        # Each pair ran back to back: the median of the pairs' ratios resists a noisy machine.
        ratios = [a / b for a, b in zip(own, base, strict=True)]
        ratio = statistics.median(ratios)
        low, _, high = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratio,) * 3
        target = TARGETS.get(spec.logical_id)
        verdict = "-" if target is None else ("pass" if ratio <= target else "MISS")
        target_text = f"{target:.2f}x" if target else "-"
        empty_ratio = median / (baseline * empty / one_route)
        print(
            f"| {spec.logical_id} | `{spec.handler}` | {median * 1000:.0f} | "
            f"{baseline * 1000:.0f} | {ratio:.2f}x | {low:.2f}–{high:.2f} | {empty_ratio:.2f}x | "
            f"{target_text} | "
            f"{verdict} |"
        )
    print("\nempty app: `fastapi.FastAPI()` under Mangum; one-route app: the same with one")
    print("`GET /health` route returning a pydantic model. Ratio: the median of the paired")
    print("ratios to the one-route app (IQR beside it); verdicts use it.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
