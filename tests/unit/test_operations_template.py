"""template.yaml's operations resources: every alarm notifies the alerts topic, the
dashboard's body is valid JSON once substituted, and its metrics are the ones the code
emits (namespace and dimension names)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from guildstack.devstack.template import _CfnLoader
from guildstack.observability import NAMESPACE

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def _resources() -> dict[str, Any]:
    document = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    resources: dict[str, Any] = document["Resources"]
    return resources


def test_given_the_template_then_each_alarm_notifies_the_alerts_topic() -> None:
    resources = _resources()
    alarms = {k: v for k, v in resources.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(alarms) == {
        "StepsDLQDepthAlarm",
        "WorkerErrorsAlarm",
        "Api5xxRateAlarm",
        "ApiLatencyP95Alarm",
    }
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlertsTopic"}]
    assert resources["AlertsTopic"]["Type"] == "AWS::SNS::Topic"


def test_given_the_dashboard_then_its_body_is_json_naming_the_emitted_metrics() -> None:
    body = _resources()["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    substituted = re.sub(r"\$\{[^}]+\}", "x", body)
    widgets = json.loads(substituted)["widgets"]
    searches = json.dumps(widgets)
    for metric in ("ModelCalls", "ModelCostMicroUsd", "ModelLatency"):
        assert metric in searches
    assert "{" + NAMESPACE + ",agent,guild,model,outcome,service}" in searches
