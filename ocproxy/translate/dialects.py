"""One table from endpoint kind to its conversions, so the shell has no
per-endpoint branches: build the upstream body, read a whole answer, and make
a stream translator."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from ocproxy.config.types import ModelConfig
from ocproxy.errors import UpstreamDataError
from ocproxy.request import MessagesRequest
from ocproxy.translate import (
    anthropic,
    chat,
    chat_response,
    content,
    gemini,
    gemini_stream,
    responses,
    responses_stream,
)
from ocproxy.translate.chat_stream import ChatStreamTranslator
from ocproxy.translate.ids import IdFactory
from ocproxy.translate.sse import StreamTranslator, dumps, utf8_json

#: ``response(data, model, ids, warnings, name)``: a whole 2xx answer → the
#: Anthropic message bytes, naming ``name`` (the model the client asked for:
#: Claude Code keeps thinking blocks only when the answer names it); anything
#: worth logging is appended to ``warnings``.
#: (``name`` None: the answering model's own id.)
Response = Callable[..., bytes]


def _json_object(data: bytes) -> dict:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UpstreamDataError(f"failed to unmarshal response: {exc}") from None
    if not isinstance(obj, dict):
        raise UpstreamDataError("failed to unmarshal response: not a JSON object")
    return obj


def _converted(convert: Callable[[dict, ModelConfig, IdFactory, list], dict]) -> Response:
    def parse(data: bytes, model: ModelConfig, ids: IdFactory, warnings: list, name: str | None = None) -> bytes:
        message = convert(_json_object(data), model, ids, warnings)
        message["model"] = name or model.model_id
        return utf8_json(dumps(message))

    return parse


#: ``body(req, model, stream, warnings) -> bytes``: the upstream request body;
#: anything worth a log line is appended to ``warnings``.
Body = Callable[[MessagesRequest, ModelConfig, bool, list], bytes]


def _built(
    build: Callable[[MessagesRequest, ModelConfig, bool], dict],
) -> Body:
    def body(req: MessagesRequest, model: ModelConfig, stream: bool, warnings: list[str]) -> bytes:
        # A lone surrogate from the client ("\ud800") cannot be strict
        # UTF-8; it goes out as its JSON escape again.
        return utf8_json(dumps(build(req, model, stream)))

    return body


@dataclass(frozen=True)
class Dialect:
    endpoint: str
    body: Body
    response: Response
    #: ``translator(model, ids, name=None)``: its ``message_start`` names
    #: ``name`` (None: the model's own id, or as the upstream sent it)
    translator: Callable[..., StreamTranslator]
    url_suffix: Callable[[bool], str] = lambda stream: ""
    #: Raw passthrough: the heartbeat stays silent between the upstream's own
    #: events, which the upstream paces itself.
    pauses_heartbeat: bool = False


DIALECTS: dict[str, Dialect] = {
    "chat": Dialect(
        "chat",
        _built(chat.build_request),
        _converted(chat_response.convert_response),
        lambda model, ids, name=None: ChatStreamTranslator(name or model.model_id, ids,
                                                           upstream_model=model.model_id),
    ),
    "anthropic": Dialect(
        "anthropic",
        lambda req, model, stream, warnings: anthropic.passthrough_body(
            req.raw, model.model_id, warnings, model, content.max_tokens(req, model)),
        lambda data, model, ids, warnings, name=None: anthropic.check_response(data, name),
        lambda model, ids, name=None: anthropic.PassthroughStream(name),
        pauses_heartbeat=True,
    ),
    "responses": Dialect(
        "responses",
        _built(responses.build_request),
        _converted(responses_stream.convert_response),
        lambda model, ids, name=None: responses_stream.ResponsesStreamTranslator(name or model.model_id, ids),
    ),
    "gemini": Dialect(
        "gemini",
        _built(gemini.build_request),
        _converted(gemini_stream.convert_response),
        lambda model, ids, name=None: gemini_stream.GeminiStreamTranslator(name or model.model_id, ids),
        lambda stream: gemini.GEMINI_STREAM if stream else gemini.GEMINI_GENERATE,
    ),
}
