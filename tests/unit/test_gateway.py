"""The devstack gateway routes like API Gateway: by template, most specific first."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import yaml

from guildstack.devstack.gateway import build_gateway
from guildstack.devstack.template import Template, schedule_interval_seconds
from tests.unit.gateway_apps import alpha, beta

TEMPLATE_TEXT = """
Globals:
  Function:
    Timeout: 12
    Environment: {Variables: {STAGE: !Ref Stage, SHARED: "1"}}
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 180
      RedrivePolicy: {deadLetterTargetArn: !GetAtt Dlq.Arn, maxReceiveCount: 3}
  Dlq:
    Type: AWS::SQS::Queue
  Alpha:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.unit.gateway_apps.alpha_handler.handler
      Environment: {Variables: {OWN: !Sub "${AWS::Region}-x"}}
      Events:
        Special: {Type: HttpApi, Properties: {Path: /items/special, Method: GET}}
        Stream: {Type: HttpApi, Properties: {Path: /stream, Method: get}}
  Beta:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.unit.gateway_apps.beta_handler.handler
      Timeout: 60
      Events:
        Item: {Type: HttpApi, Properties: {Path: "/items/{item_id}", Method: GET}}
        Files: {Type: HttpApi, Properties: {Path: "/files/{proxy+}", Method: ANY}}
        Tick: {Type: Schedule, Properties: {Schedule: rate(5 minutes)}}
        Steps:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn
            BatchSize: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig: {MaximumConcurrency: 4}
"""


@pytest.fixture
def template() -> Template:
    from guildstack.devstack.template import _CfnLoader

    return Template.parse(yaml.load(TEMPLATE_TEXT, Loader=_CfnLoader))  # noqa: S506


@pytest.fixture
def client(template: Template) -> httpx.AsyncClient:
    def import_app(name: str) -> Any:
        # Both handlers sit in one test package, so both derive `...gateway_apps.app`;
        # the template's handler names tell them apart.
        seen.append(name)
        return SimpleNamespace(app=alpha.app if len(seen) == 1 else beta.app)

    seen: list[str] = []

    gateway = build_gateway(template, import_module=import_app)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw")


def test_given_short_tags_and_globals_then_the_template_model_has_them(template: Template) -> None:
    alpha_spec, beta_spec = template.function("Alpha"), template.function("Beta")
    assert alpha_spec.timeout == 12 and beta_spec.timeout == 60
    assert alpha_spec.environment == {
        "STAGE": {"Ref": "Stage"},
        "SHARED": "1",
        "OWN": {"Fn::Sub": "${AWS::Region}-x"},
    }
    assert [(r.method, r.path) for r in alpha_spec.routes] == [
        ("GET", "/items/special"),
        ("GET", "/stream"),
    ]
    assert beta_spec.sqs_events[0].queue == "Queue"
    assert beta_spec.sqs_events[0].report_batch_item_failures
    assert beta_spec.sqs_events[0].maximum_concurrency == 4
    assert [(s.name, s.expression) for s in beta_spec.schedules] == [("Tick", "rate(5 minutes)")]
    queue = next(q for q in template.queues if q.logical_id == "Queue")
    assert (queue.visibility_timeout, queue.dead_letter_queue, queue.max_receive_count) == (
        180,
        "Dlq",
        3,
    )


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(7 days)", 604800),
        ("cron(0 3 ? * MON *)", None),
    ],
)
def test_given_schedule_expressions_then_intervals(expression: str, seconds: int | None) -> None:
    assert schedule_interval_seconds(expression) == seconds


async def test_given_a_literal_and_a_param_route_then_the_literal_wins(
    client: httpx.AsyncClient,
) -> None:
    special = await client.get("/items/special")
    assert special.json() == {"served_by": "alpha", "route": "special"}
    other = await client.get("/items/42")
    assert other.json() == {"served_by": "beta", "item": "42"}


async def test_given_a_greedy_any_route_then_every_method_and_depth_matches(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/files/a/b/c.txt")
    assert response.json() == {"served_by": "beta", "rest": "a/b/c.txt"}


async def test_given_an_undeclared_route_then_404_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/nope", headers={"X-Request-Id": "gw-test-0001"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == "gw-test-0001"
    assert response.headers["x-request-id"] == "gw-test-0001"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("DELETE", "/items/special", "GET, HEAD"), ("POST", "/items/42", "GET, HEAD")],
)
async def test_given_an_undeclared_method_on_a_declared_path_then_405_with_allow(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path, headers={"X-Request-Id": "gw-test-0002"})
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == "gw-test-0002"


def test_given_head_then_it_goes_where_get_goes(template: Template) -> None:
    gateway = build_gateway(template, import_module=lambda name: SimpleNamespace(app=alpha.app))
    assert gateway.match("HEAD", "/items/special") == gateway.match("GET", "/items/special")
    assert gateway.match("HEAD", "/items/7") == "Beta"
    assert gateway.match("HEAD", "/nope") is None


async def test_given_oversize_headers_then_431_problem_before_routing(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/nope", headers={"X-Padding": "a" * 20_000})
    assert response.status_code == 431
    assert response.headers["content-type"] == "application/problem+json"


async def test_given_a_streaming_route_then_chunks_pass_through(client: httpx.AsyncClient) -> None:
    async with client.stream("GET", "/stream") as response:
        chunks = [chunk async for chunk in response.aiter_text()]
    assert "".join(chunks) == "data: 0\n\ndata: 1\n\ndata: 2\n\n"


async def test_given_the_ready_route_then_functions_are_listed(client: httpx.AsyncClient) -> None:
    response = await client.get("/_devstack/ready")
    assert response.json() == {"status": "ready", "functions": ["Alpha", "Beta"]}


async def test_given_an_allowed_origin_then_the_gateways_own_answers_carry_cors(
    template: Template,
) -> None:
    page = "http://localhost:5173"
    gateway = build_gateway(
        template,
        import_module=lambda name: SimpleNamespace(app=alpha.app),
        cors_origins=frozenset({page}),
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw")
    preflight_headers = {"Origin": page, "Access-Control-Request-Method": "DELETE"}

    preflight = await client.options("/nope", headers=preflight_headers)
    missing = await client.get("/nope", headers={"Origin": page})
    refused = await client.delete("/items/special", headers={"Origin": page})
    foreign = await client.get("/nope", headers={"Origin": "https://evil.example"})
    foreign_preflight = await client.options(
        "/nope", headers={**preflight_headers, "Origin": "https://evil.example"}
    )

    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == page
    assert "DELETE" in preflight.headers["access-control-allow-methods"]
    assert (missing.status_code, missing.headers["access-control-allow-origin"]) == (404, page)
    assert (refused.status_code, refused.headers["access-control-allow-origin"]) == (405, page)
    assert "access-control-allow-origin" not in foreign.headers
    assert foreign_preflight.status_code == 404
    assert "access-control-allow-origin" not in foreign_preflight.headers
