"""Every function in template.yaml is built by the Makefile (`sam build` with
`BuildMethod: makefile`): without it SAM would zip the whole repository with its own
builder, and the function would ship without the shared layer's layout."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from guildstack.devstack.template import _CfnLoader

REPO = Path(__file__).resolve().parents[2]


def test_every_function_has_a_makefile_build() -> None:
    document = yaml.load((REPO / "template.yaml").read_text(), Loader=_CfnLoader)  # noqa: S506
    functions = {
        name: resource
        for name, resource in document["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    targets = set(re.findall(r"^build-(\w+):", (REPO / "Makefile").read_text(), re.M))

    unbuilt = [
        n
        for n, r in functions.items()
        if (r.get("Metadata") or {}).get("BuildMethod") != "makefile"
    ]
    assert unbuilt == []
    assert set(functions) <= targets
