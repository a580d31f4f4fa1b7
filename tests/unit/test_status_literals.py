"""A fitness rule: step, run, gate and document statuses are named only in the domain (its
vocabulary and the rules that use it) and the SQL migrations. Adapters, services, the HTTP
layer and the functions use the enums, so a status cannot be renamed in one place and
forgotten in another."""

from __future__ import annotations

import re
from pathlib import Path

from guildstack.domain.jobs import DocumentStatus
from guildstack.domain.vocabulary import GateStatus, RunStatus, StepStatus

ROOT = Path(__file__).resolve().parents[2]
STATUSES = {s.value for enum in (StepStatus, RunStatus, GateStatus, DocumentStatus) for s in enum}
LITERAL = re.compile("['\"](" + "|".join(sorted(STATUSES)) + ")['\"]")


def test_given_production_code_then_no_status_is_spelled_out_as_a_literal() -> None:
    sources = [
        path
        for folder in ("shared/guildstack", "functions")
        for path in (ROOT / folder).rglob("*.py")
        if "devstack" not in path.parts and "domain" not in path.parts
    ]
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if LITERAL.search(line)
    ]
    assert offenders == []
