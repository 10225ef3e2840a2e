"""The benchmark's baseline: the thinnest werkzeug + requests relay that only
copies text (Anthropic Messages in, Chat Completions out and back).

No validation, routing, fallback, heartbeats, timeouts or logging: what any
proxy built on the same stack costs at the least. One pooled session; a
stream is read with ``read1`` (so a delta leaves as soon as it arrives) and
each upstream read is written as one item.

Run: ``python bench/relay.py --port N --upstream URL --slow-upstream URL``
(model ``bench-slow`` goes to the slow upstream).
"""

from __future__ import annotations

import argparse
import json

import requests
from requests.adapters import HTTPAdapter
from werkzeug.serving import WSGIRequestHandler, make_server


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


def make_app(upstream: str, slow_upstream: str):
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64)
    session.mount("http://", adapter)

    def text_of(content) -> str:
        if isinstance(content, str):
            return content
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")

    def app(environ, start_response):
        n = int(environ.get("CONTENT_LENGTH") or 0)
        req = json.loads(environ["wsgi.input"].read(n))
        model = req.get("model", "")
        stream = req.get("stream") is True
        messages = [{"role": m["role"], "content": text_of(m["content"])} for m in req["messages"]]
        if req.get("system"):
            messages.insert(0, {"role": "system", "content": text_of(req["system"])})
        body = json.dumps({"model": model, "messages": messages, "max_tokens": req.get("max_tokens"),
                           "stream": stream}).encode()
        url = slow_upstream if model == "bench-slow" else upstream
        headers = {"Content-Type": "application/json", "Authorization": "Bearer x"}
        if not stream:
            r = session.post(url, data=body, headers=headers)
            data = r.json()
            out = json.dumps({
                "id": "msg_relay", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": data["choices"][0]["message"]["content"]}],
                "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
            return [out]
        headers["Accept"] = "text/event-stream"
        r = session.post(url, data=body, headers=headers, stream=True)

        def frames():
            yield (b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_relay","type":'
                   b'"message","role":"assistant","content":[],"model":"m","stop_reason":null,'
                   b'"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}\n\n'
                   b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
                   b'"content_block":{"type":"text","text":""}}\n\n')
            rest = b""
            try:
                while True:
                    data = r.raw.read1(65536)
                    if not data:
                        break
                    lines = (rest + data).split(b"\n")
                    rest = lines.pop()
                    out = []
                    for line in lines:
                        if not line.startswith(b"data: ") or line == b"data: [DONE]":
                            continue
                        choices = json.loads(line[6:]).get("choices") or [{}]
                        text = (choices[0].get("delta") or {}).get("content")
                        if text:
                            out.append(b'event: content_block_delta\ndata: {"type":"content_block_delta",'
                                       b'"index":0,"delta":{"type":"text_delta","text":'
                                       + json.dumps(text).encode() + b"}}\n\n")
                    if out:
                        yield b"".join(out)
            finally:
                r.close()
            yield (b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
                   b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn",'
                   b'"stop_sequence":null},"usage":{"input_tokens":0,"output_tokens":0}}\n\n'
                   b'event: message_stop\ndata: {"type":"message_stop"}\n\n')

        start_response("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])
        return frames()

    return app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--slow-upstream", required=True)
    args = ap.parse_args()
    server = make_server("127.0.0.1", args.port, make_app(args.upstream, args.slow_upstream),
                         threaded=True, request_handler=_Quiet)
    print("ready", args.port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
