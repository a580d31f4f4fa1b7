"""What each provider sends for a request with a JSON schema, through the real SDKs over a
scripted HTTP transport: OpenAI's native `json_schema`, the compatible provider's JSON mode
with the schema in the system prompt, Anthropic's `output_config` in the subset its API
accepts, and which provider the container builds with which."""

from __future__ import annotations

import json
from typing import Any

from guildstack.adapters.models.anthropic import AnthropicProvider, output_schema
from guildstack.adapters.models.openai import OpenAIProvider, schema_instruction
from guildstack.bootstrap import build
from guildstack.config import Settings
from guildstack.domain.models import ChatMessage, Completion, ModelRequest
from tests.fakes import wire
from tests.fakes.wire import ScriptedTransport

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "vote": {"type": "string", "enum": ["accept", "reject", "abstain"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["vote"],
}
VOTE = '{"vote": "accept", "confidence": 0.9}'
REQUEST = ModelRequest(
    system="You review plans.",
    messages=(ChatMessage("user", "Vote on: launch in Spain first."),),
    json_schema=SCHEMA,
    max_tokens=300,
)


def compatible(transport: ScriptedTransport) -> OpenAIProvider:
    return OpenAIProvider(
        "unused",
        name="compatible",
        base_url="http://ollama.local:11434/v1",
        http_client=transport.client(),
        native_json_schema=False,
    )


async def test_given_openai_when_a_schema_is_asked_then_native_non_strict_json_schema() -> None:
    transport = ScriptedTransport([wire.openai_completion(VOTE)])
    provider = OpenAIProvider("test-key", http_client=transport.client())

    result = await provider.complete("gpt-5-mini", REQUEST)

    sent = transport.bodies()[0]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": SCHEMA, "strict": False},
    }
    assert sent["messages"] == [
        {"role": "system", "content": "You review plans."},
        {"role": "user", "content": "Vote on: launch in Spain first."},
    ]
    assert sent["max_completion_tokens"] == 300
    assert result.text == VOTE


async def test_given_the_compatible_provider_when_a_schema_is_asked_then_json_mode() -> None:
    transport = ScriptedTransport([wire.openai_completion(VOTE, model="llama3.1")])

    result = await compatible(transport).complete("llama3.1", REQUEST)

    sent = transport.bodies()[0]
    assert sent["response_format"] == {"type": "json_object"}
    system, user = sent["messages"]
    assert system["role"] == "system"
    assert system["content"].startswith("You review plans.\n\nReply with one JSON object")
    assert system["content"].endswith(json.dumps(SCHEMA, separators=(",", ":")))
    assert user == {"role": "user", "content": "Vote on: launch in Spain first."}
    assert sent["max_tokens"] == 300
    assert (result.text, result.provider) == (VOTE, "compatible")


async def test_given_the_compatible_provider_when_streaming_then_json_mode_too() -> None:
    transport = ScriptedTransport([wire.openai_stream(['{"vote": ', '"reject"}'])])

    items = [i async for i in compatible(transport).stream("llama3.1", REQUEST)]

    sent = transport.bodies()[0]
    assert sent["response_format"] == {"type": "json_object"} and sent["stream"] is True
    assert sent["messages"][0]["content"].endswith(schema_instruction(SCHEMA))
    final = items[-1]
    assert isinstance(final, Completion) and final.text == '{"vote": "reject"}'


async def test_given_no_system_prompt_then_json_mode_sends_the_instruction_alone() -> None:
    transport = ScriptedTransport([wire.openai_completion(VOTE)])
    request = ModelRequest(system="", messages=REQUEST.messages, json_schema=SCHEMA)

    await compatible(transport).complete("llama3.1", request)

    assert transport.bodies()[0]["messages"][0] == {
        "role": "system",
        "content": schema_instruction(SCHEMA),
    }


async def test_given_no_schema_then_neither_provider_sends_a_response_format() -> None:
    native = ScriptedTransport([wire.openai_completion("hi")])
    json_mode = ScriptedTransport([wire.openai_completion("hi")])
    plain = ModelRequest(system="Be brief.", messages=REQUEST.messages)

    await OpenAIProvider("k", http_client=native.client()).complete("gpt-5-mini", plain)
    await compatible(json_mode).complete("llama3.1", plain)

    for transport in (native, json_mode):
        sent = transport.bodies()[0]
        assert "response_format" not in sent
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}


def test_given_configured_providers_then_only_the_compatible_one_uses_json_mode() -> None:
    settings = Settings.from_environ(
        {
            "STAGE": "test",
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_COMPATIBLE_BASE_URL": "http://localhost:11434/v1",
        }
    )

    providers = build(settings).model_providers

    openai, local = providers["openai"], providers["compatible"]
    assert isinstance(openai, OpenAIProvider) and isinstance(local, OpenAIProvider)
    assert (openai.native_json_schema, local.native_json_schema) == (True, False)


async def test_given_anthropic_when_a_schema_is_asked_then_the_supported_subset_is_sent() -> None:
    transport = ScriptedTransport([wire.anthropic_message(VOTE), wire.anthropic_stream([VOTE])])
    provider = AnthropicProvider("test-key", http_client=transport.client())

    await provider.complete("claude-haiku-4-5", REQUEST)
    _ = [item async for item in provider.stream("claude-haiku-4-5", REQUEST)]

    for sent in transport.bodies():
        assert sent["output_config"] == {
            "format": {"type": "json_schema", "schema": output_schema(SCHEMA)}
        }
        schema = sent["output_config"]["format"]["schema"]
        assert schema["additionalProperties"] is False
        assert schema["properties"]["confidence"] == {
            "type": "number",
            "description": 'Constraints: {"maximum": 1, "minimum": 0}',
        }
        assert sent["system"] == "You review plans."  # the schema is not repeated there
