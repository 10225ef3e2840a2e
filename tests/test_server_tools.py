"""Server tools (issue 14 item 9): never a fake function; the upstream's own
search instead, and its findings back as the blocks Claude Code's WebSearch
tool reads. Shapes and their sources: tests/webfixtures.py."""

from __future__ import annotations

import json
import random

import pytest

from ocproxy.config import Config, ModelConfig
from ocproxy.errors import ProxyError
from ocproxy.request import checked_request
from ocproxy.routing.chain import build_route
from ocproxy.translate import chat, gemini, responses, sse
from ocproxy.translate.gemini_stream import GeminiStreamTranslator
from ocproxy.translate.gemini_stream import convert_response as gemini_convert
from ocproxy.translate.ids import sequential
from ocproxy.translate.responses_stream import ResponsesStreamTranslator
from ocproxy.translate.responses_stream import convert_response as responses_convert
from tests import sseclient
from tests import webfixtures as wf
from tests.sseclient import check_grammar, translate
from tests.sseclient import frame_events as sse_events

GPT = ModelConfig(provider="opencode-zen", model_id="gpt-5.4")
GEMINI = ModelConfig(provider="opencode-zen", model_id="gemini-3-flash")
ZEN_CLAUDE = ModelConfig(provider="opencode-zen", model_id="claude-sonnet-4-6")
GLM = ModelConfig(model_id="glm-5")
GO_MINIMAX = ModelConfig(model_id="minimax-m2.7")  # Anthropic API on Go: no search

FUNCTION_TOOL = {"name": "Read", "description": "read", "input_schema": {"type": "object", "properties": {}}}


def request(tools, **extra):
    return checked_request({"model": "claude-haiku-4-5", "max_tokens": 100, "tools": tools,
                            "messages": [{"role": "user", "content": f"Perform a web search for: {wf.QUERY}"}],
                            **extra})


def wire(build, model, req):
    return json.loads(sse.dumps(build(req, model, False)))


def accumulate(events: list[dict]) -> list[dict]:
    """The content blocks a client builds from the events."""
    return sseclient.accumulate(events)["content"]


def splits(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), 12))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]


def feed_pieces(translator, pieces):
    frames = []
    for piece in pieces:
        frames += translator.feed(piece)
    return frames + translator.close()


# -- requests -----------------------------------------------------------------


def test_server_tool_is_never_a_function_for_chat():
    body = wire(chat.build_request, GLM, request([wf.WEB_SEARCH_TOOL, FUNCTION_TOOL]))
    assert [t["function"]["name"] for t in body["tools"]] == ["Read"]


def test_responses_gets_its_builtin_web_search_and_asks_for_sources():
    tool = {**wf.WEB_SEARCH_TOOL, "allowed_domains": ["example.org"],
            "user_location": {"type": "approximate", "city": "Paris", "country": "FR"}}
    body = wire(responses.build_request, GPT, request([tool]))
    assert body["tools"] == [{"type": "web_search", "filters": {"allowed_domains": ["example.org"]},
                              "user_location": {"type": "approximate", "city": "Paris", "country": "FR"}}]
    assert "web_search_call.action.sources" in body["include"]
    assert "tool_choice" not in body


def test_a_forced_web_search_is_required_on_responses():
    """Claude Code's WebSearch sub-request forces the tool by name."""
    forced = request([wf.WEB_SEARCH_TOOL], tool_choice={"type": "tool", "name": "web_search"})
    assert wire(responses.build_request, GPT, forced)["tool_choice"] == "required"
    mixed = request([wf.WEB_SEARCH_TOOL, FUNCTION_TOOL], tool_choice={"type": "tool", "name": "web_search"})
    assert "tool_choice" not in wire(responses.build_request, GPT, mixed)  # "required" could pick Read


def test_gemini_gets_google_search_grounding():
    body = wire(gemini.build_request, GEMINI, request([wf.WEB_SEARCH_TOOL, FUNCTION_TOOL]))
    assert body["tools"] == [{"functionDeclarations": [{"name": "Read", "description": "read"}]},
                             {"google_search": {}}]
    fetch = {"type": "web_fetch_20250910", "name": "web_fetch"}
    assert wire(gemini.build_request, GEMINI, request([fetch]))["tools"] == [{"url_context": {}}]


# -- answers ----------------------------------------------------------------------

EXPECTED_BLOCKS = [
    {"type": "server_tool_use", "id": "srvtoolu_000001", "name": "web_search", "input": {"query": wf.QUERY}},
    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_000001",
     "content": [{"type": "web_search_result", "url": wf.URL_A, "title": wf.URL_A, "encrypted_content": "",
                  "page_age": None}]},
    {"type": "text", "text": wf.ANSWER},
    # cited in the text, listed by no search: reported after the text
    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_000001",
     "content": [{"type": "web_search_result", "url": wf.URL_B, "title": "ocproxy 1.0 is out",
                  "encrypted_content": "", "page_age": None}]},
]


def test_responses_whole_answer_gives_search_blocks():
    msg = responses_convert(wf.responses_whole(), GPT, sequential(), [])
    assert msg["content"] == EXPECTED_BLOCKS
    assert msg["stop_reason"] == "end_turn"
    assert msg["usage"]["server_tool_use"] == {"web_search_requests": 1}


@pytest.mark.parametrize("cut", ["whole", "bytes", *[f"random{s}" for s in range(3)]])
def test_responses_stream_gives_the_same_blocks(cut):
    data = wf.responses_stream_bytes()
    pieces = {"whole": [data], "bytes": [data[i:i + 1] for i in range(len(data))]}.get(cut) or splits(
        data, int(cut[-1]))
    ids = sequential()
    events = sse_events(feed_pieces(ResponsesStreamTranslator("gpt-5.4", ids), pieces))
    check_grammar(events)
    blocks = accumulate(events)
    # the stream's ids come from the same factory after its msg_ id
    assert [b["type"] for b in blocks] == [b["type"] for b in EXPECTED_BLOCKS]
    search_id = blocks[0]["id"]
    assert search_id.startswith("srvtoolu_") and blocks[1]["tool_use_id"] == blocks[3]["tool_use_id"] == search_id
    assert blocks[0]["input"] == {"query": wf.QUERY}
    assert blocks[1]["content"] == EXPECTED_BLOCKS[1]["content"] and blocks[3]["content"] == EXPECTED_BLOCKS[3]["content"]
    assert blocks[2]["text"] == wf.ANSWER
    assert events[-2]["delta"]["stop_reason"] == "end_turn"
    assert events[-2]["usage"]["server_tool_use"] == {"web_search_requests": 1}


GEMINI_BLOCKS = [
    {"type": "text", "text": wf.ANSWER},
    {"type": "server_tool_use", "id": "srvtoolu_000001", "name": "web_search", "input": {"query": wf.QUERY}},
    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_000001", "content": [
        {"type": "web_search_result", "url": c["web"]["uri"], "title": c["web"]["title"], "encrypted_content": "",
         "page_age": None} for c in wf.GROUNDING["groundingChunks"]]},
]


def test_gemini_whole_answer_gives_search_blocks():
    msg = gemini_convert(wf.gemini_whole(), GEMINI, sequential(), [])
    assert msg["content"] == GEMINI_BLOCKS
    assert msg["stop_reason"] == "end_turn"
    assert msg["usage"]["server_tool_use"] == {"web_search_requests": 1}


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_gemini_stream_gives_the_same_blocks(chunk):
    events = translate(GeminiStreamTranslator("gemini-3-flash", sequential()), wf.gemini_stream_bytes(), chunk)
    check_grammar(events)
    blocks = accumulate(events)
    assert [b["type"] for b in blocks] == ["text", "server_tool_use", "web_search_tool_result"]
    assert blocks[0]["text"] == wf.ANSWER
    assert blocks[1]["input"] == {"query": wf.QUERY} and blocks[2]["tool_use_id"] == blocks[1]["id"]
    assert blocks[2]["content"] == GEMINI_BLOCKS[2]["content"]
    assert events[-2]["usage"]["server_tool_use"] == {"web_search_requests": 1}


# -- routing ------------------------------------------------------------------------


def config(**models) -> Config:
    return Config(api_key="k", models={"default": GLM, "fast": GLM, **models.pop("extra", {})}, **models)


def test_web_search_scenario_routes_requests_with_the_tool():
    cfg = config(extra={"web_search": GPT}, fallbacks={"web_search": (GLM, GEMINI)})
    route = build_route(request([wf.WEB_SEARCH_TOOL]), cfg, streaming=True)
    assert route.scenario == "web_search"
    assert [m.model_id for m in route.chain] == ["gpt-5.4", "gemini-3-flash"]  # glm cannot search: skipped
    plain = build_route(request([FUNCTION_TOOL]), cfg, streaming=True)
    assert plain.scenario == "fast" and plain.primary.model_id == "glm-5"


def test_without_the_scenario_the_ordinary_chain_keeps_models_that_search():
    cfg = config(fallbacks={"fast": (GO_MINIMAX, ZEN_CLAUDE)})
    assert [m.model_id for m in build_route(request([wf.WEB_SEARCH_TOOL]), cfg, True).chain] == ["claude-sonnet-4-6"]


def test_no_model_that_searches_is_a_plain_400():
    cfg = config(fallbacks={"fast": (GO_MINIMAX,)})
    with pytest.raises(ProxyError) as err:
        build_route(request([wf.WEB_SEARCH_TOOL]), cfg, True)
    assert err.value.status == 400
    assert "web search is not available through this proxy" in err.value.message
