"""Every chat-upstream quirk fixture end to end: the real threaded server, a
fake upstream on a real socket replaying the fixture, and the official
``anthropic`` SDK as the client. The SDK must accumulate the expected
message; then a second turn built from that reply (the assistant content
as the SDK holds it, plus a tool_result for each tool call) goes back
through the proxy to a fake upstream that enforces the rules the real
upstream enforces, answering 400 with the real error text when one is
broken:

* OpenAI chat: a ``tool`` message must answer a tool call of the assistant
  message before it, and every tool call must be answered;
* DeepSeek (thinking on unless disabled): an assistant message with tool
  calls must carry its ``reasoning_content``;
* Kimi (thinking on by default): the same, with Moonshot's wording.

MiniMax does not refuse history without its reasoning (it only reasons
worse), so for it the test checks what its guide asks: the reasoning comes
back in think tags at the start of the assistant content.
"""

from __future__ import annotations

import json

import anthropic
import pytest

from ocproxy.config import ModelConfig
from tests import quirks
from tests.conftest import GO_CHAT, make_config
from tests.fakes import chat_completion, chat_text_chunks, json_body, sse, status

FIXTURES = quirks.load()
STREAMING = {n: f for n, f in quirks.streaming(FIXTURES).items() if "error" not in f["expect"]}
BROKEN = {n: f for n, f in quirks.streaming(FIXTURES).items() if "error" in f["expect"]}
WHOLE = quirks.whole(FIXTURES)

SECOND_ANSWER = "Second turn accepted."
USER = {"role": "user", "content": "Do the task."}


def _events(fixture: dict) -> list[bytes]:
    return [b"data: " + payload.encode("utf-8") + b"\n\n" for payload in fixture["stream"]]


def history_problem(req: dict) -> tuple[str, str] | None:
    """(kind of upstream, the error text it would answer 400 with), or None."""
    model = req.get("model", "")
    thinking_on = (req.get("thinking") or {}).get("type") != "disabled"
    messages = req.get("messages") or []
    pending: set[str] = set()  # tool call ids the tool messages still owe
    for i, msg in enumerate(messages):
        role = msg.get("role")
        if role == "tool":
            if msg.get("tool_call_id") not in pending:
                return "openai", ("Invalid parameter: messages with role 'tool' must be a response to a "
                                  "preceeding message with 'tool_calls'.")
            pending.discard(msg["tool_call_id"])
            continue
        if pending:
            return "openai", ("An assistant message with 'tool_calls' must be followed by tool messages "
                              "responding to each 'tool_call_id'.")
        calls = msg.get("tool_calls") or []
        if role != "assistant" or not calls:
            continue
        for call in calls:
            function = call.get("function") or {}
            if not function.get("name") or not call.get("id"):
                return "openai", f"Invalid 'messages[{i}].tool_calls': missing id or function name."
            try:
                arguments = json.loads(function.get("arguments") or "")
            except ValueError:
                arguments = None
            if not isinstance(arguments, dict):
                return "openai", f"Invalid 'messages[{i}].tool_calls': arguments are not a JSON object."
            pending.add(call["id"])
        if thinking_on and not msg.get("reasoning_content"):
            if model.startswith("deepseek-"):
                return "deepseek", "The `reasoning_content` in the thinking mode must be passed back to the API."
            if model.startswith("kimi-"):
                return "kimi", f"thinking is enabled but reasoning_content is missing in assistant tool call message at index {i}"
    if pending:
        return "openai", ("An assistant message with 'tool_calls' must be followed by tool messages "
                          "responding to each 'tool_call_id'.")
    return None


def enforcing_upstream(seen: list[dict]):
    """Turn two: refuse what the real upstream refuses, else answer."""

    def script(h, rec):
        req = json.loads(rec.body)
        seen.append(req)
        problem = history_problem(req)
        if problem is not None:
            status(400, {"error": {"message": problem[1], "type": "invalid_request_error", "param": None,
                                   "code": "invalid_request_error"}})(h, rec)
        elif req.get("stream"):
            sse(*chat_text_chunks([SECOND_ANSWER], usage={"prompt_tokens": 30, "completion_tokens": 4}))(h, rec)
        else:
            json_body(chat_completion(SECOND_ANSWER))(h, rec)

    return script


def _proxy(upstream, start_proxy, fixture: dict):
    model = ModelConfig(model_id=fixture["upstream_model"], endpoint="chat")
    return start_proxy(make_config(upstream, models={"default": model, "fast": model}))


def _tools(fixture: dict) -> list[dict]:
    names = sorted({b["name"] for b in fixture["expect"]["content"] if b["type"] == "tool_use"})
    return [{"name": n, "description": n, "input_schema": {"type": "object"}} for n in names]


def _as_expected(content) -> list[dict]:
    out = []
    for block in content:
        d = block.model_dump(exclude_none=True)
        d.pop("signature", None)
        d.pop("citations", None)
        out.append(d)
    return out


def _second_turn(final, tools) -> list[dict]:
    """What Claude Code sends next: its history, the assistant content as the
    SDK holds it, and a result for each tool call (or a new question)."""
    assistant = [b.model_dump(exclude_none=True) for b in final.content]
    results = [{"type": "tool_result", "tool_use_id": b.id, "content": f"result of {b.name}"}
               for b in final.content if b.type == "tool_use"]
    follow = results or [{"type": "text", "text": "Thanks. And then?"}]
    return [USER, {"role": "assistant", "content": assistant}, {"role": "user", "content": follow}]


def _check_reasoning_went_back(fixture: dict, req: dict) -> None:
    thinking = "".join(b["thinking"] for b in fixture["expect"]["content"] if b["type"] == "thinking")
    assistant = next(m for m in req["messages"] if m["role"] == "assistant")
    if not thinking:
        return
    if "minimax" in fixture["upstream_model"]:
        assert assistant["content"].startswith(f"<think>{thinking}</think>"), assistant
        assert "reasoning_content" not in assistant
    else:
        assert assistant["reasoning_content"] == thinking


@pytest.mark.parametrize("name", sorted(STREAMING))
def test_stream_quirk_with_sdk_and_second_turn(name, upstream, start_proxy, sdk):
    fixture = STREAMING[name]
    seen: list[dict] = []
    upstream.on(GO_CHAT, sse(*_events(fixture)), enforcing_upstream(seen))
    client = sdk(_proxy(upstream, start_proxy, fixture))
    tools = _tools(fixture)
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=1024, messages=[USER], tools=tools) as stream:
        final = stream.get_final_message()
    expect = fixture["expect"]
    assert _as_expected(final.content) == expect["content"]
    assert final.stop_reason == expect["stop_reason"]
    assert final.usage.model_dump(exclude_none=True) == expect["usage"]

    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=1024, messages=_second_turn(final, tools),
                                tools=tools) as stream:
        second = stream.get_final_message()
    assert [b.text for b in second.content if b.type == "text"] == [SECOND_ANSWER], seen[-1:]
    assert len(seen) == 1 and history_problem(seen[0]) is None
    _check_reasoning_went_back(fixture, seen[0])


@pytest.mark.parametrize("name", sorted(WHOLE))
def test_whole_quirk_with_sdk_and_second_turn(name, upstream, start_proxy, sdk):
    fixture = WHOLE[name]
    seen: list[dict] = []
    upstream.on(GO_CHAT, json_body(fixture["whole"]), enforcing_upstream(seen))
    client = sdk(_proxy(upstream, start_proxy, fixture))
    tools = _tools(fixture)
    final = client.messages.create(model="claude-sonnet-4-5", max_tokens=1024, messages=[USER], tools=tools)
    expect = fixture["expect"]
    assert _as_expected(final.content) == expect["content"]
    assert final.stop_reason == expect["stop_reason"]
    assert final.usage.model_dump(exclude_none=True) == expect["usage"]

    second = client.messages.create(model="claude-sonnet-4-5", max_tokens=1024, messages=_second_turn(final, tools),
                                    tools=tools)
    assert [b.text for b in second.content if b.type == "text"] == [SECOND_ANSWER], seen[-1:]
    _check_reasoning_went_back(fixture, seen[0])


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_error_inside_stream_ends_with_error_event(name, upstream, start_proxy, sdk):
    """The SDK sees the text that went out, then an error event, never a
    clean end_turn; the proxy keeps serving."""
    fixture = BROKEN[name]
    upstream.on(GO_CHAT, sse(*_events(fixture)), enforcing_upstream([]))
    proxy = _proxy(upstream, start_proxy, fixture)
    client = sdk(proxy)
    received: list[str] = []
    with pytest.raises(anthropic.APIError) as info:
        with client.messages.stream(model="claude-sonnet-4-5", max_tokens=1024, messages=[USER]) as stream:
            for event in stream:
                if event.type == "text":
                    received.append(event.text)
    assert "".join(received) == fixture["expect"]["partial_text"]
    assert "failed" in str(info.value)
    assert proxy.app.metrics.snapshot()["requests_failed"] == 1
    # the next request is served normally
    again = client.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=[USER])
    assert again.content[0].text == SECOND_ANSWER


def test_second_turn_rules_are_enforced():
    """The fake refuses exactly what the real upstreams refuse."""
    call = {"id": "c1", "type": "function", "function": {"name": "Read", "arguments": "{}"}}
    tool = {"role": "tool", "tool_call_id": "c1", "content": "x"}
    bare = {"role": "assistant", "content": "", "tool_calls": [call]}
    reasoned = dict(bare, reasoning_content="why")
    assert history_problem({"model": "deepseek-v4-pro", "messages": [bare, tool]})[0] == "deepseek"
    assert history_problem({"model": "deepseek-v4-pro", "thinking": {"type": "disabled"}, "messages": [bare, tool]}) is None
    assert history_problem({"model": "deepseek-v4-pro", "messages": [reasoned, tool]}) is None
    assert history_problem({"model": "kimi-k2.6", "messages": [bare, tool]})[0] == "kimi"
    assert history_problem({"model": "glm-5.1", "messages": [bare, tool]}) is None
    assert history_problem({"model": "glm-5.1", "messages": [bare]})[0] == "openai"
    assert history_problem({"model": "glm-5.1", "messages": [tool]})[0] == "openai"
