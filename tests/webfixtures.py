"""Recorded shapes of web search answers, written from public evidence.

- OpenAI Responses, web search: the ``web_search_call`` output item
  (``action: {"type": "search", "query", "sources": [{"type": "url", "url"}]}``,
  sources sent when ``include`` has ``web_search_call.action.sources``) and
  ``url_citation`` annotations on ``output_text``:
  https://platform.openai.com/docs/guides/tools-web-search ; item type
  openai/openai-python src/openai/types/responses/response_function_web_search.py.
  Streaming: ``response.web_search_call.in_progress|searching|completed``
  (``item_id``, ``output_index``, ``sequence_number``):
  openai/openai-ruby lib/openai/models/responses/response_web_search_call_in_progress_event.rb
  and https://platform.openai.com/docs/api-reference/responses-streaming ;
  ``response.output_text.annotation.added`` (``annotation``,
  ``annotation_index``, ``content_index``, ``item_id``, ``output_index``):
  openai-python src/openai/types/responses/response_output_text_annotation_added_event.py.
- Gemini, Grounding with Google Search: ``candidates[0].groundingMetadata``
  with ``webSearchQueries``, ``searchEntryPoint.renderedContent``,
  ``groundingChunks[].web{uri,title}`` (uris are vertexaisearch redirect
  links) and ``groundingSupports``: https://ai.google.dev/gemini-api/docs/google-search
  (REST response example); arrives in the last streamed chunk with
  ``finishReason``.
- Anthropic, what Claude Code reads back: ``server_tool_use`` (id
  ``srvtoolu_…``, name ``web_search``, ``input.query``) and
  ``web_search_tool_result`` (``content``: ``web_search_result`` items with
  ``url``, ``title``, ``encrypted_content``, ``page_age``):
  https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/web-search-tool
  Claude Code sends WebSearch as its own sub-request whose only tool is
  ``web_search_20250305``, forced, and parses those blocks:
  https://github.com/nocoo/raven/pull/4 , https://github.com/raine/claude-code-proxy/pull/53 ;
  a proxy answering 400 when no upstream can run it:
  https://github.com/Alishahryar1/free-claude-code/issues/1470
"""

from __future__ import annotations

import json

QUERY = "ocproxy release notes"
URL_A = "https://example.org/releases"
URL_B = "https://example.net/blog/ocproxy-1-0"
ANSWER = "Version 1.0 shipped in May."

WEB_SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 8}


def responses_search_item(status="completed"):
    item = {"type": "web_search_call", "id": "ws_67c9fa0502748190b7dd390736892e100be649c1a5ff9609", "status": status}
    if status == "completed":
        item["action"] = {"type": "search", "query": QUERY, "sources": [{"type": "url", "url": URL_A}]}
    return item


def responses_message_item(with_annotations=True):
    annotations = [
        {"type": "url_citation", "start_index": 0, "end_index": 11, "url": URL_A, "title": "Releases"},
        {"type": "url_citation", "start_index": 12, "end_index": 26, "url": URL_B, "title": "ocproxy 1.0 is out"},
    ] if with_annotations else []
    return {"type": "message", "id": "msg_67c9fa077e288190af08fdffda2e34f20be649c1a5ff9609", "status": "completed",
            "role": "assistant", "content": [{"type": "output_text", "text": ANSWER, "annotations": annotations}]}


USAGE = {"input_tokens": 300, "output_tokens": 20, "total_tokens": 320}


def responses_whole():
    return {"id": "resp_1", "object": "response", "status": "completed", "model": "gpt-5.4",
            "output": [responses_search_item(), responses_message_item()], "usage": USAGE}


def responses_events():
    ws = responses_search_item()
    msg = responses_message_item()
    annotations = msg["content"][0]["annotations"]
    events = [
        {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress", "output": []}},
        {"type": "response.output_item.added", "output_index": 0, "item": responses_search_item("in_progress")},
        {"type": "response.web_search_call.in_progress", "output_index": 0, "item_id": ws["id"]},
        {"type": "response.web_search_call.searching", "output_index": 0, "item_id": ws["id"]},
        {"type": "response.web_search_call.completed", "output_index": 0, "item_id": ws["id"]},
        {"type": "response.output_item.done", "output_index": 0, "item": ws},
        {"type": "response.output_item.added", "output_index": 1,
         "item": {**msg, "status": "in_progress", "content": []}},
        {"type": "response.content_part.added", "item_id": msg["id"], "output_index": 1, "content_index": 0,
         "part": {"type": "output_text", "text": "", "annotations": []}},
        {"type": "response.output_text.delta", "item_id": msg["id"], "output_index": 1, "content_index": 0,
         "delta": ANSWER[:12]},
        {"type": "response.output_text.annotation.added", "item_id": msg["id"], "output_index": 1,
         "content_index": 0, "annotation_index": 0, "annotation": annotations[0]},
        {"type": "response.output_text.delta", "item_id": msg["id"], "output_index": 1, "content_index": 0,
         "delta": ANSWER[12:]},
        {"type": "response.output_text.annotation.added", "item_id": msg["id"], "output_index": 1,
         "content_index": 0, "annotation_index": 1, "annotation": annotations[1]},
        {"type": "response.output_text.done", "item_id": msg["id"], "output_index": 1, "content_index": 0,
         "text": ANSWER},
        {"type": "response.output_item.done", "output_index": 1, "item": msg},
        {"type": "response.completed", "response": responses_whole()},
    ]
    for n, event in enumerate(events):
        event["sequence_number"] = n
    return events


def responses_stream_bytes() -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in responses_events())


GROUNDING = {
    "webSearchQueries": [QUERY],
    "searchEntryPoint": {"renderedContent": "<style>.container{}</style><div class=\"container\">…</div>"},
    "groundingChunks": [
        {"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AbF9wXE1", "title": "example.org"}},
        {"web": {"uri": "https://vertexaisearch.cloud.google.com/grounding-api-redirect/AbF9wXG2", "title": "example.net"}},
    ],
    "groundingSupports": [
        {"segment": {"startIndex": 0, "endIndex": 26, "text": ANSWER}, "groundingChunkIndices": [0, 1]},
    ],
}
GEMINI_USAGE = {"promptTokenCount": 30, "candidatesTokenCount": 9, "totalTokenCount": 39}


def gemini_whole():
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": ANSWER}]}, "finishReason": "STOP",
                            "index": 0, "groundingMetadata": GROUNDING}],
            "usageMetadata": GEMINI_USAGE, "modelVersion": "gemini-3-flash"}


def gemini_chunks():
    return [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": ANSWER[:12]}]}, "index": 0}]},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": ANSWER[12:]}]}, "finishReason": "STOP",
                         "index": 0, "groundingMetadata": GROUNDING}], "usageMetadata": GEMINI_USAGE},
    ]


def gemini_stream_bytes() -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in gemini_chunks())


def anthropic_whole():
    """What Zen's Claude answers with the tool passed through."""
    return {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
            "content": [
                {"type": "server_tool_use", "id": "srvtoolu_01WYG3ziw53XMcoyKL4XcZmE", "name": "web_search",
                 "input": {"query": QUERY}},
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01WYG3ziw53XMcoyKL4XcZmE",
                 "content": [{"type": "web_search_result", "url": URL_A, "title": "Releases",
                              "encrypted_content": "EqgfCioIARgBIiQ3YTAwMjY1", "page_age": "May 2, 2026"}]},
                {"type": "text", "text": ANSWER},
            ],
            "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 300, "output_tokens": 20, "server_tool_use": {"web_search_requests": 1}}}
