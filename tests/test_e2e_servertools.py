"""Server tools, PDFs and carried reasoning state end to end: the official
anthropic SDK against the real threaded server, fake upstreams on real
sockets that enforce the upstream's rules (issue 14 items 9, 10, 13).

Rules the fakes enforce, and where they are documented:
- Gemini 400s a replayed ``functionCall`` (first of its step) without its
  ``thoughtSignature``, and a signature it did not issue:
  https://ai.google.dev/gemini-api/docs/thought-signatures
- The Responses API with ``store: false`` needs the reasoning item that
  preceded a function call passed back with it ("Item 'fc_…' of type
  'function_call' was provided without its required 'reasoning' item"):
  https://platform.openai.com/docs/guides/reasoning#encrypted-reasoning-items
Answer shapes: tests/webfixtures.py and tests/test_reasoning_state.py.
"""

from __future__ import annotations

import json

import anthropic
import pytest
import requests

from ocproxy.config import ModelConfig
from tests import webfixtures as wf
from tests.conftest import GO_CHAT, ZEN_MESSAGES, ZEN_MODELS, ZEN_RESPONSES, make_config
from tests.fakes import chat_completion, json_body, sse, status
from tests.pdfs import b64, document, text_pdf

GEMINI = ModelConfig(provider="opencode-zen", model_id="gemini-3-flash")
GPT = ModelConfig(provider="opencode-zen", model_id="gpt-5.4")
ZEN_CLAUDE = ModelConfig(provider="opencode-zen", model_id="claude-sonnet-4-6")
GLM = ModelConfig(model_id="glm-5")
TOOLS = [{"name": "get_weather", "description": "Weather for a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
QUESTION = {"role": "user", "content": "Weather in Paris?"}


def configured(model: ModelConfig, upstream, **extra):
    return make_config(upstream, models={"default": model, "fast": model, **extra.pop("models", {})}, **extra)


def ask(client, stream: bool, **kwargs):
    kwargs.setdefault("model", "claude-sonnet-4-5")
    kwargs.setdefault("max_tokens", 200)
    if stream:
        with client.messages.stream(**kwargs) as s:
            return s.get_final_message()
    return client.messages.create(**kwargs)


def second_turn(first) -> list[dict]:
    """The history Claude Code builds from the SDK's accumulated reply."""
    calls = [b for b in first.content if b.type == "tool_use"]
    return [QUESTION, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": c.id, "content": "sunny"}
                                         for c in calls]}]


def enforcing(check, answer):
    """A fake script that answers 400 (the upstream's error body) when
    ``check(body)`` names a broken rule, else runs ``answer``."""
    def script(h, rec):
        problem = check(rec.json)
        if problem:
            return status(400, {"error": {"code": 400, "message": problem, "status": "INVALID_ARGUMENT"}})(h, rec)
        return answer(h, rec)
    return script


# -- Gemini thought signatures ------------------------------------------------------

SIG = "CiQBjz1rX+5iR/cX0Xn3kZ0q4n0S3nQ=="


def gemini_rules(body: dict) -> str | None:
    for content in body.get("contents") or ():
        if content.get("role") != "model":
            continue
        calls = [p for p in content["parts"] if "functionCall" in p]
        if calls and "thoughtSignature" not in calls[0]:
            return "Function call is missing a thought_signature in functionCall parts."
        for p in calls:
            if p.get("thoughtSignature") not in (None, SIG):
                return "Corrupted thought signature."
    return None


def gemini_call_body():
    return {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": SIG}]},
        "finishReason": "STOP", "index": 0}]}


def gemini_text_body():
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": "Sunny."}]}, "finishReason": "STOP",
                            "index": 0}]}


def gemini_answer(body, stream):
    return sse(b"data: " + json.dumps(body).encode() + b"\r\n\r\n") if stream else json_body(body)


def test_fake_gemini_really_rejects_a_call_without_its_signature(upstream):
    path = f"{ZEN_MODELS}/gemini-3-flash:generateContent"
    upstream.on(path, enforcing(gemini_rules, json_body(gemini_text_body())))
    unsigned = {"contents": [{"role": "user", "parts": [{"text": "q"}]},
                             {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]}]}
    assert requests.post(upstream.url(path), json=unsigned, timeout=5).status_code == 400
    signed = {"contents": [unsigned["contents"][0], {"role": "model", "parts": [
        {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": SIG}]}]}
    assert requests.post(upstream.url(path), json=signed, timeout=5).status_code == 200


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_gemini_second_turn_carries_the_real_signature(upstream, start_proxy, sdk, stream):
    path = f"{ZEN_MODELS}/gemini-3-flash:{'streamGenerateContent' if stream else 'generateContent'}"
    upstream.on(path, enforcing(gemini_rules, gemini_answer(gemini_call_body(), stream)),
                enforcing(gemini_rules, gemini_answer(gemini_text_body(), stream)))
    client = sdk(start_proxy(configured(GEMINI, upstream)))
    first = ask(client, stream, tools=TOOLS, messages=[QUESTION])
    assert first.stop_reason == "tool_use"
    second = ask(client, stream, tools=TOOLS, messages=second_turn(first))
    assert second.content[0].text == "Sunny."
    replayed = upstream.calls(path)[1].json["contents"][1]["parts"][0]
    assert replayed["thoughtSignature"] == SIG  # the one the fake issued, not the placeholder


# -- Responses encrypted reasoning ---------------------------------------------------

ENCRYPTED = "gAAAAABoISQ24OyVRYbkYfukWC0Y8dnPdz7KX6dZjFZp"
REASONING = {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Use the tool."}],
             "encrypted_content": ENCRYPTED}
CALL = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
        "arguments": "{\"city\":\"Paris\"}", "status": "completed"}
TEXT = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
        "content": [{"type": "output_text", "text": "Sunny.", "annotations": []}]}


def responses_rules(body: dict) -> str | None:
    if body.get("store") is not False or "reasoning.encrypted_content" not in body.get("include", []):
        return "expected store=false with include reasoning.encrypted_content"
    items = body["input"]
    for i, item in enumerate(items):
        if item.get("type") == "function_call":
            before = items[i - 1] if i else {}
            if before.get("type") != "reasoning" or before.get("encrypted_content") != ENCRYPTED \
                    or before.get("id") != "rs_1":
                return (f"Item '{CALL['id']}' of type 'function_call' was provided without its required "
                        "'reasoning' item: 'rs_1'.")
    return None


def responses_answer(output, stream):
    body = {"id": "resp_1", "object": "response", "status": "completed", "model": "gpt-5.4", "output": output,
            "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}}
    if not stream:
        return json_body(body)
    events = []
    for n, item in enumerate(output):
        if item["type"] == "reasoning":
            events.append({"type": "response.output_item.added", "output_index": n,
                           "item": {**item, "summary": [], "encrypted_content": None}})
            events.append({"type": "response.reasoning_summary_text.delta", "output_index": n, "item_id": item["id"],
                           "summary_index": 0, "delta": item["summary"][0]["text"]})
        elif item["type"] == "function_call":
            events.append({"type": "response.output_item.added", "output_index": n, "item": {**item, "arguments": ""}})
            events.append({"type": "response.function_call_arguments.delta", "output_index": n, "item_id": item["id"],
                           "delta": item["arguments"]})
        else:
            events.append({"type": "response.output_text.delta", "output_index": n, "item_id": item["id"],
                           "content_index": 0, "delta": item["content"][0]["text"]})
        events.append({"type": "response.output_item.done", "output_index": n, "item": item})
    events.append({"type": "response.completed", "response": body})
    return sse(*[f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events])


def test_fake_responses_really_rejects_a_call_without_its_reasoning(upstream):
    upstream.on(ZEN_RESPONSES, enforcing(responses_rules, json_body({})))
    body = {"store": False, "include": ["reasoning.encrypted_content"], "input": [CALL]}
    assert requests.post(upstream.url(ZEN_RESPONSES), json=body, timeout=5).status_code == 400


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_responses_second_turn_replays_the_encrypted_reasoning(upstream, start_proxy, sdk, stream):
    upstream.on(ZEN_RESPONSES, enforcing(responses_rules, responses_answer([REASONING, CALL], stream)),
                enforcing(responses_rules, responses_answer([TEXT], stream)))
    client = sdk(start_proxy(configured(GPT, upstream)))
    first = ask(client, stream, tools=TOOLS, messages=[QUESTION])
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    second = ask(client, stream, tools=TOOLS, messages=second_turn(first))
    assert second.content[0].text == "Sunny."
    replayed = [i for i in upstream.calls(ZEN_RESPONSES)[1].json["input"] if i["type"] == "reasoning"]
    assert replayed == [{"type": "reasoning", "id": "rs_1", "encrypted_content": ENCRYPTED,
                         "summary": [{"type": "summary_text", "text": "Use the tool."}]}]


# -- web search -----------------------------------------------------------------------


def web_search(client, stream):
    return ask(client, stream, model="claude-haiku-4-5", tools=[wf.WEB_SEARCH_TOOL],
               tool_choice={"type": "tool", "name": "web_search"},
               messages=[{"role": "user", "content": f"Perform a web search for the query: {wf.QUERY}"}])


def anthropic_stream_of(message: dict):
    events = [{"type": "message_start", "message": {**message, "content": [], "stop_reason": None}}]
    for i, block in enumerate(message["content"]):
        if block["type"] == "server_tool_use":
            events.append({"type": "content_block_start", "index": i, "content_block": {**block, "input": {}}})
            events.append({"type": "content_block_delta", "index": i,
                           "delta": {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}})
        elif block["type"] == "text":
            events.append({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}})
            events.append({"type": "content_block_delta", "index": i,
                           "delta": {"type": "text_delta", "text": block["text"]}})
        else:
            events.append({"type": "content_block_start", "index": i, "content_block": block})
        events.append({"type": "content_block_stop", "index": i})
    events.append({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                   "usage": {"output_tokens": 20}})
    events.append({"type": "message_stop"})
    return sse(*[f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events])


def gemini_web(stream):
    if stream:
        return sse(*[b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in wf.gemini_chunks()])
    return json_body(wf.gemini_whole())


CASES = {
    "responses": (GPT, ZEN_RESPONSES, lambda s: sse(wf.responses_stream_bytes()) if s else json_body(wf.responses_whole())),
    "gemini": (GEMINI, None, gemini_web),
    "anthropic": (ZEN_CLAUDE, ZEN_MESSAGES,
                  lambda s: anthropic_stream_of(wf.anthropic_whole()) if s else json_body(wf.anthropic_whole())),
}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("dialect", list(CASES))
def test_web_search_comes_back_as_blocks_claude_code_reads(upstream, start_proxy, sdk, dialect, stream):
    model, path, answer = CASES[dialect]
    if path is None:
        path = f"{ZEN_MODELS}/gemini-3-flash:{'streamGenerateContent' if stream else 'generateContent'}"
    upstream.on(path, answer(stream))
    upstream.on(GO_CHAT, status(500))  # the ordinary model must not be asked
    client = sdk(start_proxy(configured(GLM, upstream, models={"web_search": model})))
    reply = web_search(client, stream)

    kinds = [b.type for b in reply.content]
    assert "server_tool_use" in kinds and "web_search_tool_result" in kinds and "text" in kinds
    use = next(b for b in reply.content if b.type == "server_tool_use")
    result = next(b for b in reply.content if b.type == "web_search_tool_result")
    assert use.name == "web_search" and use.input == {"query": wf.QUERY} and result.tool_use_id == use.id
    assert result.content[0].url.startswith("https://") and result.content[0].title
    assert "".join(b.text for b in reply.content if b.type == "text") == wf.ANSWER
    assert reply.stop_reason == "end_turn"
    assert reply.usage.server_tool_use.web_search_requests == 1

    [sent] = upstream.calls(path)
    assert upstream.calls(GO_CHAT) == []
    tools = sent.json["tools"]
    expected = {"responses": [{"type": "web_search"}], "gemini": [{"google_search": {}}],
                "anthropic": [wf.WEB_SEARCH_TOOL]}[dialect]
    assert tools == expected


def test_web_search_without_a_model_that_can_search_says_so(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, json_body(chat_completion("I searched!")))
    client = sdk(start_proxy(configured(GLM, upstream)))
    with pytest.raises(anthropic.BadRequestError) as err:
        web_search(client, stream=True)
    assert "web search is not available through this proxy" in str(err.value)
    assert upstream.calls(GO_CHAT) == []
    # the proxy keeps serving
    assert client.messages.create(model="x", max_tokens=5, messages=[QUESTION]).content[0].text == "I searched!"


# -- PDFs -------------------------------------------------------------------------------

PDF = text_pdf("Invoice total 1234 EUR")


def pdf_request(client):
    return client.messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": [
        document(PDF, "invoice"), {"type": "text", "text": "What is the total?"}]}])


def test_pdf_reaches_each_dialect_in_its_shape(upstream, start_proxy, sdk):
    gem_path = f"{ZEN_MODELS}/gemini-3-flash:generateContent"
    upstream.on(ZEN_RESPONSES, json_body({"status": "completed", "output": [TEXT]}))
    upstream.on(gem_path, json_body(gemini_text_body()))
    upstream.on(GO_CHAT, json_body(chat_completion("Sunny.")))
    pdf_chat = ModelConfig(model_id="glm-5", pdf=True)
    for model in (GPT, GEMINI, GLM, pdf_chat):
        proxy = start_proxy(configured(model, upstream))
        assert pdf_request(sdk(proxy)).content[0].text == "Sunny."

    data_url = "data:application/pdf;base64," + b64(PDF)
    [gpt] = upstream.calls(ZEN_RESPONSES)
    assert gpt.json["input"][0]["content"][0] == {"type": "input_file", "filename": "invoice.pdf",
                                                  "file_data": data_url}
    [gem] = upstream.calls(gem_path)
    assert gem.json["contents"][0]["parts"][0] == {"inlineData": {"mimeType": "application/pdf", "data": b64(PDF)}}
    text_only, with_files = upstream.calls(GO_CHAT)
    content = text_only.json["messages"][-1]["content"]
    assert content.startswith('[Text extracted from the "invoice" PDF')
    assert "Invoice total 1234 EUR" in content and content.endswith("What is the total?")
    assert {"type": "file", "file": {"filename": "invoice.pdf", "file_data": data_url}} in \
        with_files.json["messages"][-1]["content"]
