"""Debug capture through the real server: every upstream exchange, whole and
streamed, request and answer in full, in size-rotated files, keys never."""

from __future__ import annotations

import json

import anthropic
import pytest

from tests.conftest import API_KEY, GO_CHAT, make_config
from tests.procs import wait_for
from tests.fakes import chat_completion, chat_text_chunks, json_body, sse, status

USER = [{"role": "user", "content": "capture me"}]


def lines(directory) -> list[dict]:
    out = []
    for path in sorted(directory.glob("upstream.jsonl*"), reverse=True):  # oldest rotated file first
        out += [json.loads(line) for line in path.read_text().split("\n")[:-1]]  # whole lines only
    return out


def test_capture_writes_each_exchange_with_keys_redacted(upstream, start_proxy, sdk, tmp_path):
    upstream.on(GO_CHAT, json_body(chat_completion("whole answer")),
                sse(*chat_text_chunks(["streamed ", "answer"])),
                status(401, {"error": {"message": f"invalid api key {API_KEY}"}}))
    proxy = start_proxy(make_config(upstream, capture_dir=str(tmp_path / "cap")))
    client = sdk(proxy)
    client.messages.create(model="claude-sonnet-4-6", max_tokens=20, messages=USER)
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=20, messages=USER) as stream:
        assert stream.get_final_text() == "streamed answer"
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(model="claude-sonnet-4-6", max_tokens=20, messages=USER)
    assert wait_for(lambda: len(lines(tmp_path / "cap")) == 3, 10)
    whole, streamed, refused = lines(tmp_path / "cap")
    assert whole["url"].endswith(GO_CHAT) and whole["model"] == "kimi-k2.6"
    assert whole["request"]["body"]["messages"][-1]["content"] == "capture me"
    assert whole["request"]["headers"]["Authorization"] == "[redacted]"
    assert whole["response"]["body"]["choices"][0]["message"]["content"] == "whole answer"
    assert whole["request_id"].startswith("req-")
    assert streamed["request"]["body"]["stream"] is True
    assert "streamed " in streamed["response"]["body"] and "[DONE]" in streamed["response"]["body"]
    assert refused["response"]["status"] == 401 and "401" in refused["error"]
    raw = "".join(p.read_text() for p in (tmp_path / "cap").glob("upstream.jsonl*"))
    assert API_KEY not in raw and "[redacted]" in raw
    assert ((tmp_path / "cap" / "upstream.jsonl").stat().st_mode & 0o777) == 0o600


def test_capture_files_rotate_by_size(upstream, start_proxy, sdk, tmp_path):
    upstream.on(GO_CHAT, *[json_body(chat_completion("x" * 3000)) for _ in range(6)])
    proxy = start_proxy(make_config(upstream, capture_dir=str(tmp_path / "cap"), capture_max_bytes=8000,
                                    capture_backups=2))
    for _ in range(6):
        sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=20, messages=USER)
    assert wait_for(lambda: len(list((tmp_path / "cap").glob("upstream.jsonl*"))) == 3, 10)
    files = sorted(p.name for p in (tmp_path / "cap").glob("upstream.jsonl*"))
    assert files == ["upstream.jsonl", "upstream.jsonl.1", "upstream.jsonl.2"]
    assert all((tmp_path / "cap" / f).stat().st_size <= 8000 + 4000 for f in files)
