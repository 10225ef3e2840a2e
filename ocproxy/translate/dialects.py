"""One table from endpoint kind to its conversions, so the shell has no
per-endpoint branches: build the upstream body, read a whole answer, and make
a stream translator (routing.md §3.1)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from ocproxy.config import ModelConfig
from ocproxy.errors import UpstreamDataError
from ocproxy.request import MessagesRequest
from ocproxy.translate import anthropic, chat, chat_response, gemini, gemini_stream, responses, responses_stream
from ocproxy.translate.chat_stream import ChatStreamTranslator
from ocproxy.translate.sse import StreamTranslator, dumps, utf8_json


def _json_object(data: bytes) -> dict:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UpstreamDataError(f"failed to unmarshal response: {exc}") from None
    if not isinstance(obj, dict):
        raise UpstreamDataError("failed to unmarshal response: not a JSON object")
    return obj


def _converted(convert: Callable[[dict, ModelConfig], dict]) -> Callable[[bytes, ModelConfig], bytes]:
    def parse(data: bytes, model: ModelConfig) -> bytes:
        return utf8_json(dumps(convert(_json_object(data), model)))

    return parse


def _built(
    build: Callable[[MessagesRequest, ModelConfig, bool], dict],
) -> Callable[[MessagesRequest, ModelConfig, bool], bytes]:
    def body(req: MessagesRequest, model: ModelConfig, stream: bool) -> bytes:
        # A lone surrogate from the client ("\ud800") cannot be strict
        # UTF-8; it goes out as its JSON escape again.
        return utf8_json(dumps(build(req, model, stream)))

    return body


@dataclass(frozen=True)
class Dialect:
    endpoint: str
    body: Callable[[MessagesRequest, ModelConfig, bool], bytes]
    response: Callable[[bytes, ModelConfig], bytes]
    translator: Callable[[ModelConfig], StreamTranslator]
    url_suffix: Callable[[bool], str] = lambda stream: ""


DIALECTS: dict[str, Dialect] = {
    "chat": Dialect(
        "chat",
        _built(chat.build_request),
        _converted(chat_response.convert_response),
        lambda model: ChatStreamTranslator(model.model_id),
    ),
    "anthropic": Dialect(
        "anthropic",
        lambda req, model, stream: anthropic.passthrough_body(req.raw, model.model_id),
        lambda data, model: anthropic.check_response(data),
        lambda model: anthropic.PassthroughStream(),
    ),
    "responses": Dialect(
        "responses",
        _built(responses.build_request),
        _converted(responses_stream.convert_response),
        lambda model: responses_stream.ResponsesStreamTranslator(model.model_id),
    ),
    "gemini": Dialect(
        "gemini",
        _built(gemini.build_request),
        _converted(gemini_stream.convert_response),
        lambda model: gemini_stream.GeminiStreamTranslator(model.model_id),
        lambda stream: gemini.GEMINI_STREAM if stream else gemini.GEMINI_GENERATE,
    ),
}
