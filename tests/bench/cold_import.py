"""Cold import time of every function's Lambda handler, beside a bare FastAPI + Mangum app.

Measured on what Lambda runs: the bundle `sam build` makes (built for this machine's
architecture), imported by Python 3.12 with the layer first on the path, as /opt/python
and /var/task are, and with bytecode writing off, as on Lambda's read-only file system, so
only the bytecode the bundle ships is used. The baseline app imports from the same layer.
Without python3.12 or a working `sam build` the bench falls back to the development
environment and says so; those figures include compiling whatever has no bytecode.

Each sample is a fresh interpreter (as a Lambda cold start is); the time is measured
inside the child around the import alone, so interpreter start-up is excluded from all.
Each function is alternated with the baseline, and judged on the median of the paired
ratios: this machine's speed drifts by a third within a run.

Two baselines are printed. An app with no routes at all never pays FastAPI's own
first-route cost: since 0.119, creating the first route with a pydantic model imports
`pydantic.v1` (a compatibility probe). Any app that serves anything pays it, so verdicts
are judged against the bare app with one typed route; the ratio to the empty app is
printed beside it.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from guildstack.devstack.template import Template
from tests.fixtures.bundle import BuildFailed, Bundle, sam_build

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
# AgentsFunction serves the most routes (the registry, trials, usage, audits): 1.25x; the
# other API functions 1.3x.
TARGETS = {
    "AgentsFunction": 1.25,
    **dict.fromkeys(["AuthFunction", "RunsFunction", "ToolsFunction", "ChatFunction",
                     "MemoryFunction", "CampaignsFunction"], 1.3),
}  # fmt: skip

PROBE = """
import sys, time
started = time.perf_counter()
exec(sys.argv[1])
print(time.perf_counter() - started)
"""


@dataclass(frozen=True)
class Runner:
    """Runs a statement in a fresh interpreter, in the bundle or in the dev environment."""

    bundle: Bundle | None
    workdir: Path

    @property
    def where(self) -> str:
        if self.bundle is None:
            return "the development environment (no bundle: figures include compiling)"
        return "the sam build bundle, Python 3.12, bytecode writing off"

    def once(self, statement: str, function: str | None = None) -> float:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "Guildstack",
            "STAGE": "test",
        }
        if self.bundle is None:
            command, cwd = [sys.executable, "-c", PROBE, statement], REPO
        else:
            env |= {
                "PYTHONPATH": self.bundle.pythonpath(function),
                "PYTHONDONTWRITEBYTECODE": "1",
                "AWS_LAMBDA_FUNCTION_NAME": function or "Baseline",
            }
            command, cwd = [self.bundle.python, "-s", "-c", PROBE, statement], self.workdir
        out = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, check=True
        ).stdout
        return float(out.strip().splitlines()[-1])

    def paired(
        self, statement: str, function: str | None, runs: int
    ) -> tuple[list[float], list[float]]:
        """Seconds taken by `statement` and by the one-route app, alternating in fresh
        interpreters, so a machine that speeds up or slows down affects both alike. The
        first pair only warms the file system cache."""
        self.once(statement, function), self.once(ONE_ROUTE_APP)
        timings: tuple[list[float], list[float]] = ([], [])
        for _ in range(runs):
            timings[0].append(self.once(statement, function))
            timings[1].append(self.once(ONE_ROUTE_APP))
        return timings


@contextmanager
def runner() -> Iterator[Runner]:
    with tempfile.TemporaryDirectory(prefix="gs-bench-") as directory:
        workdir = Path(directory)
        try:
            bundle: Bundle | None = sam_build(workdir / "build")
        except BuildFailed as failure:
            print(f"sam build unavailable, measuring the dev environment: {failure}\n")
            bundle = None
        yield Runner(bundle=bundle, workdir=workdir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--function", action="append", help="only these (logical ids)")
    args = parser.parse_args(argv)

    template = Template.load(REPO / "template.yaml")
    with runner() as run:
        empty_samples, one_route_samples = run.paired(EMPTY_APP, None, args.runs)
        empty, one_route = statistics.median(empty_samples), statistics.median(one_route_samples)
        print(f"## Cold import of each handler (median of {args.runs} fresh processes)\n")
        print(f"Measured in {run.where}.\n")
        print(f"empty app {empty * 1000:.0f} ms, one-route app {one_route * 1000:.0f} ms\n")
        print(
            "| function | handler | median ms | one-route app ms (paired) | ratio | ratio IQR"
            " | ratio to empty | target | verdict |"
        )
        print("|---|---|---:|---:|---:|---|---:|---:|---|")
        for spec in template.functions:
            if args.function and spec.logical_id not in args.function:
                continue
            own, base = run.paired(f"import {spec.entry_module}", spec.logical_id, args.runs)
            median, baseline = statistics.median(own), statistics.median(base)
            ratios = [a / b for a, b in zip(own, base, strict=True)]
            ratio = statistics.median(ratios)
            low, _, high = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratio,) * 3
            target = TARGETS.get(spec.logical_id)
            verdict = "-" if target is None else ("pass" if ratio <= target else "MISS")
            target_text = f"{target:.2f}x" if target else "-"
            empty_ratio = median / (baseline * empty / one_route)
            print(
                f"| {spec.logical_id} | `{spec.handler}` | {median * 1000:.0f} | "
                f"{baseline * 1000:.0f} | {ratio:.2f}x | {low:.2f}–{high:.2f} | "
                f"{empty_ratio:.2f}x | {target_text} | {verdict} |"
            )
    print("\nempty app: `fastapi.FastAPI()` under Mangum; one-route app: the same with one")
    print("`GET /health` route returning a pydantic model. Ratio: the median of the paired")
    print("ratios to the one-route app (IQR beside it); verdicts use it.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
