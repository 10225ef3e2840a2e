"""Reasoning state upstreams require back (issue 14 item 13), carried
through the blocks Claude Code returns unchanged.

Sources of the rules and shapes:
- Gemini thought signatures: a ``thoughtSignature`` on the ``functionCall``
  part (the first call of a step when calls are parallel) must come back on
  that same part, else 400 "Function call is missing a thought_signature";
  ``skip_thought_signature_validator`` is the documented stand-in for calls
  from elsewhere: https://ai.google.dev/gemini-api/docs/thought-signatures ;
  the 400 text as users hit it ("Function call is missing a thought_signature
  in functionCall parts … Please refer to
  https://aistudio.google.com/docs/thought-signatures"):
  https://github.com/ccch1mneyyy/dsh-Go/discussions/2016 ; only the first of
  parallel calls is signed, the rest must not get a made-up one:
  https://docs.apiyi.com/en/faq/gemini-thought-signature-missing
- Responses with ``store: false``: ``include: ["reasoning.encrypted_content"]``
  puts ``encrypted_content`` on each ``reasoning`` output item, and the
  items are passed back as input on the next turn:
  https://platform.openai.com/docs/guides/reasoning#encrypted-reasoning-items
  (item shape: openai-python src/openai/types/responses/response_reasoning_item.py);
  clients doing the same: Vercel AI SDK @ai-sdk/openai 2.0.49 ("add
  reasoning.encrypted_content include when store = false"), langchainjs
  @langchain/openai 1.5.13 (replay every reasoning item's id and
  encrypted_content in order under zero data retention); the error without
  it: https://github.com/coder/mux/pull/59
"""

from __future__ import annotations

import json

import pytest

from ocproxy.config import ModelConfig
from ocproxy.request import checked_request
from ocproxy.translate import anthropic, gemini, reasoning_state, responses, sse
from ocproxy.translate.gemini_stream import GeminiStreamTranslator
from ocproxy.translate.gemini_stream import convert_response as gemini_convert
from ocproxy.translate.ids import sequential
from ocproxy.translate.responses_stream import ResponsesStreamTranslator
from ocproxy.translate.responses_stream import convert_response as responses_convert
from tests.sseclient import translate
from tests.test_server_tools import accumulate

GEMINI = ModelConfig(provider="opencode-zen", model_id="gemini-3-flash")
GEMINI_2 = ModelConfig(provider="opencode-zen", model_id="gemini-2.5-flash")
GPT = ModelConfig(provider="opencode-zen", model_id="gpt-5.4")
SIG = "CiQBjz1rX+5iR/cX0Xn3kZ0q4n0S3nQ=="  # base64 with + / = : survives the id encoding
QUESTION = {"role": "user", "content": "weather in Paris and Lima?"}


def gemini_parallel_calls():
    return {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": SIG},
        {"functionCall": {"name": "get_weather", "args": {"city": "Lima"}}},
    ]}, "finishReason": "STOP", "index": 0}]}


def next_turn_parts(assistant_content, model=GEMINI):
    calls = [b for b in assistant_content if b["type"] == "tool_use"]
    results = [{"type": "tool_result", "tool_use_id": c["id"], "content": "sunny"} for c in calls]
    req = checked_request({"model": "m", "max_tokens": 50, "messages": [
        QUESTION, {"role": "assistant", "content": assistant_content}, {"role": "user", "content": results}]})
    body = json.loads(sse.dumps(gemini.build_request(req, model, False)))
    return [p for p in body["contents"][1]["parts"] if "functionCall" in p]


def test_gemini_signature_round_trips_through_the_tool_use_id():
    msg = gemini_convert(gemini_parallel_calls(), GEMINI, sequential(), [])
    first, second = msg["content"]
    assert reasoning_state.gemini_signature(first["id"]) == (True, SIG)
    assert reasoning_state.gemini_signature(second["id"]) == (True, None)
    assert all(c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-" for c in first["id"])
    parts = next_turn_parts(msg["content"])
    assert parts[0]["thoughtSignature"] == SIG  # the real one, on the same part
    assert "thoughtSignature" not in parts[1]  # Gemini signed only the first


@pytest.mark.parametrize("chunk", [None, 1, 5])
def test_gemini_stream_carries_the_signature_too(chunk):
    data = b"data: " + json.dumps(gemini_parallel_calls()).encode() + b"\r\n\r\n"
    blocks = accumulate(translate(GeminiStreamTranslator("gemini-3-flash", sequential()), data, chunk))
    assert [reasoning_state.gemini_signature(b["id"]) for b in blocks] == [(True, SIG), (True, None)]
    assert next_turn_parts(blocks)[0]["thoughtSignature"] == SIG


def test_placeholder_only_for_calls_the_proxy_never_saw():
    foreign = [{"type": "tool_use", "id": "functions.get_weather:0", "name": "get_weather", "input": {}},
               {"type": "tool_use", "id": "toolu_01abc", "name": "get_weather", "input": {}}]
    parts = next_turn_parts(foreign)
    assert [p["thoughtSignature"] for p in parts] == [gemini.SKIP_SIGNATURE] * 2
    assert all("thoughtSignature" not in p for p in next_turn_parts(foreign, GEMINI_2))
    # a call we saw unsigned that now leads its step (another model made it) gets the placeholder
    seen_unsigned = [{"type": "tool_use", "id": reasoning_state.gemini_tool_id("toolu_1", None),
                      "name": "get_weather", "input": {}}]
    assert next_turn_parts(seen_unsigned)[0]["thoughtSignature"] == gemini.SKIP_SIGNATURE


# -- Responses -------------------------------------------------------------------

ENCRYPTED = "gAAAAABoISQ24OyVRYbkYfukWC0Y8dnPdz7KX6dZjFZp"


def reasoning_item(summary=("Check the weather tool.",)):
    return {"type": "reasoning", "id": "rs_6820f383d7c08191846711c5df8233bc0ac5ba57aafcbac7",
            "summary": [{"type": "summary_text", "text": t} for t in summary], "encrypted_content": ENCRYPTED}


CALL = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
        "arguments": "{\"city\":\"Paris\"}", "status": "completed"}


def replayed_input(assistant_content):
    req = checked_request({"model": "m", "max_tokens": 50, "messages": [
        QUESTION, {"role": "assistant", "content": assistant_content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}]}]})
    return json.loads(sse.dumps(responses.build_request(req, GPT, False)))["input"]


def test_responses_encrypted_reasoning_is_replayed_before_its_call():
    msg = responses_convert({"status": "completed", "output": [reasoning_item(), CALL]}, GPT, sequential(), [])
    thinking, tool_use = msg["content"]
    assert thinking["thinking"] == "Check the weather tool."
    assert reasoning_state.is_proxy_signature(thinking["signature"])
    items = replayed_input(msg["content"])
    assert [i["type"] for i in items] == ["message", "reasoning", "function_call", "function_call_output"]
    assert items[1] == {"type": "reasoning", "id": reasoning_item()["id"], "encrypted_content": ENCRYPTED,
                        "summary": [{"type": "summary_text", "text": "Check the weather tool."}]}


def _ev(**e):
    return f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode()


@pytest.mark.parametrize("summary", [("Check the weather tool.",), ()], ids=["with-summary", "no-summary"])
def test_responses_stream_closes_thinking_with_the_encrypted_state(summary):
    item = reasoning_item(summary)
    data = b"".join([
        _ev(type="response.output_item.added", output_index=0, item={**item, "summary": [], "encrypted_content": None}),
        *[_ev(type="response.reasoning_summary_text.delta", item_id=item["id"], output_index=0, summary_index=0,
              delta=t) for t in summary],
        _ev(type="response.output_item.done", output_index=0, item=item),
        _ev(type="response.output_item.added", output_index=1, item={**CALL, "arguments": ""}),
        _ev(type="response.function_call_arguments.delta", output_index=1, item_id="fc_1", delta=CALL["arguments"]),
        _ev(type="response.output_item.done", output_index=1, item=CALL),
        _ev(type="response.completed", response={"status": "completed", "output": [item, CALL]}),
    ])
    blocks = accumulate(translate(ResponsesStreamTranslator("gpt-5.4", sequential()), data, 9))
    assert [b["type"] for b in blocks] == ["thinking", "tool_use"]
    assert blocks[0]["thinking"] == "".join(summary)
    replayed = replayed_input(blocks)[1]
    assert replayed["encrypted_content"] == ENCRYPTED and replayed["id"] == item["id"]
    assert replayed["summary"] == [{"type": "summary_text", "text": t} for t in summary]


def test_anthropic_passthrough_drops_thinking_other_upstreams_signed():
    signature = reasoning_state.responses_signature(reasoning_item())
    raw = json.dumps({"model": "claude-x", "max_tokens": 5, "messages": [
        QUESTION, {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": signature},
                                                    {"type": "text", "text": "hi"}]}]}).encode()
    sent = json.loads(anthropic.passthrough_body(raw, "claude-sonnet-4-6"))
    assert sent["messages"][1]["content"] == [{"type": "text", "text": "hi"}]


def test_two_streamed_reasoning_items_keep_their_own_blocks_and_state():
    first = {**reasoning_item(("Look up Paris.",)), "id": "rs_a", "encrypted_content": "enc-a"}
    second = {**reasoning_item(("Now answer.",)), "id": "rs_b", "encrypted_content": "enc-b"}
    events = []
    for n, item in enumerate((first, second)):
        events += [_ev(type="response.reasoning_summary_text.delta", item_id=item["id"], output_index=n,
                       summary_index=0, delta=item["summary"][0]["text"]),
                   _ev(type="response.output_item.done", output_index=n, item=item)]
    events.append(_ev(type="response.completed", response={"status": "completed", "output": [first, second]}))
    blocks = accumulate(translate(ResponsesStreamTranslator("gpt-5.4", sequential()), b"".join(events)))
    assert [b["thinking"] for b in blocks] == ["Look up Paris.", "Now answer."]
    replayed = [responses.build_request(checked_request({"model": "m", "max_tokens": 5, "messages": [
        QUESTION, {"role": "assistant", "content": blocks}]}), GPT, False)["input"][i] for i in (1, 2)]
    assert [(r["id"], r["encrypted_content"]) for r in replayed] == [("rs_a", "enc-a"), ("rs_b", "enc-b")]
