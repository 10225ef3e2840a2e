"""The real client: Claude Code's CLI, through the proxy, against a
fake OpenAI-chat upstream that first asks for a Write tool call and then,
given the tool result, answers with text. The file must exist with the
content and the CLI must print the final text. A second session does the
same through a chat upstream that streams its reasoning in think tags and
two parallel Write calls without an ``index`` (MiniMax's and Moonshot's
shapes).

The CLI comes from npm into ``.cache/claude-code`` (``make claude-code``; the
test installs it itself when missing). Without npm, or when the install
fails, the test skips with the reason — except under ``CI=true``, where it
fails: CI must really run it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocproxy.config import ModelConfig
from tests.conftest import GO_CHAT, make_config
from tests.fakes import Recorded, json_body, chat_completion, sse

REPO = Path(__file__).resolve().parent.parent
PREFIX = REPO / ".cache" / "claude-code"
CLAUDE = PREFIX / "node_modules" / ".bin" / "claude"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

FINAL_TEXT = "All done: hello.txt is written."
CONTENT = "hello from the proxy \u2028 é 😀\n"


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"Claude Code CLI unavailable in CI: {reason}")
    pytest.skip(f"Claude Code CLI unavailable: {reason}")


@pytest.fixture(scope="module")
def claude() -> str:
    if not CLAUDE.exists():
        npm = shutil.which("npm")
        if npm is None:
            _unavailable("npm is not installed (install Node.js, then `make claude-code`)")
        PREFIX.mkdir(parents=True, exist_ok=True)
        try:
            run = subprocess.run([npm, "install", "--prefix", str(PREFIX), "--no-audit", "--no-fund",
                                  "--loglevel=error", "@anthropic-ai/claude-code"],
                                 capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            _unavailable("`npm install @anthropic-ai/claude-code` timed out")
        if run.returncode != 0 or not CLAUDE.exists():
            _unavailable(f"`npm install @anthropic-ai/claude-code` failed ({run.returncode}): "
                         f"{(run.stderr or run.stdout)[-500:]}")
    version = subprocess.run([str(CLAUDE), "--version"], capture_output=True, text=True, timeout=60)
    if version.returncode != 0:
        _unavailable(f"`claude --version` failed: {version.stderr[-300:]}")
    return str(CLAUDE)


def _chat_answer(req: dict, rec: Recorded, h, text: str, calls: list | None):
    if req.get("stream"):
        out = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
        if calls:
            # arguments in small pieces, as real upstreams stream them
            first, *rest = calls
            args = first["function"]["arguments"]
            out.append({"choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "id": first["id"], "type": "function",
                 "function": {"name": first["function"]["name"], "arguments": ""}}]}}]})
            out += [{"choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "function": {"arguments": args[i:i + 9]}}]}}]} for i in range(0, len(args), 9)]
            out.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
        else:
            out += [{"choices": [{"index": 0, "delta": {"content": text[i:i + 5]}}]} for i in range(0, len(text), 5)]
            out.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        out += [{"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 6}}, "[DONE]"]
        sse(*out, delay=0.002)(h, rec)
    else:
        tool_calls = [{"id": c["id"], "type": "function", "function": c["function"]} for c in calls or ()]
        json_body(chat_completion(text, tool_calls=tool_calls or None,
                                  finish="tool_calls" if calls else "stop"))(h, rec)


def turn_kind(req: dict) -> str:
    """Which of Claude Code's requests this is: "final" (the last message is
    a tool result), "tool-call" (the main loop, with the Write tool) or
    "side" (titles, quota probes and other requests without tools)."""
    messages = req.get("messages") or []
    if messages and messages[-1].get("role") == "tool":
        return "final"
    if "Write" in [t.get("function", {}).get("name") for t in req.get("tools") or ()]:
        return "tool-call"
    return "side"


def claude_code_upstream(target: Path, log: list):
    """Routes every request Claude Code makes, by what it carries:

    * the main loop (has the Write tool) and the last message is not a tool
      result → a Write tool call for ``target``;
    * the last message is a tool result → the final text;
    * anything else (title generation, quota probes, other side requests
      with no tools) → a short plain answer.
    """

    def script(h, rec: Recorded):
        req = json.loads(rec.body)
        kind = turn_kind(req)
        if kind == "final":
            text, calls = FINAL_TEXT, None
        elif kind == "tool-call":
            text = ""
            calls = [{"id": "call_write_1", "type": "function", "function": {
                "name": "Write", "arguments": json.dumps({"file_path": str(target), "content": CONTENT},
                                                         ensure_ascii=False)}}]
        else:
            text, calls = '{"title": "Write hello.txt"}', None
        log.append((kind, bool(req.get("stream")), req))
        _chat_answer(req, rec, h, text, calls)

    return script


def _run_claude(claude: str, proxy, work: Path, home: Path, prompt: str):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": proxy.url,
        "ANTHROPIC_AUTH_TOKEN": "unused",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "IS_SANDBOX": "1",  # we run as root in CI: lets bypassPermissions through
        "TERM": "dumb",
    }
    for name in ("NODE_EXTRA_CA_CERTS", "TMPDIR", "LANG"):
        if name in os.environ:
            env[name] = os.environ[name]
    started = time.monotonic()
    run = subprocess.run(
        [claude, "-p", prompt, "--output-format", "stream-json",
         "--verbose", "--permission-mode", "bypassPermissions", "--allowedTools", "Write"],
        cwd=work, env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - started
    diag = f"rc={run.returncode} after {elapsed:.1f}s\nstdout tail:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-2000:]}"
    events = [json.loads(line) for line in run.stdout.splitlines() if line.strip().startswith("{")]
    return run, events, diag, elapsed


def _dirs(tmp_path: Path) -> tuple[Path, Path]:
    work = tmp_path / "work"
    home = tmp_path / "home"
    work.mkdir()
    home.mkdir()
    return work, home


def test_claude_code_runs_a_tool_through_the_proxy(claude, upstream, start_proxy, tmp_path):
    work, home = _dirs(tmp_path)
    target = work / "hello.txt"
    log: list = []
    upstream.on(GO_CHAT, claude_code_upstream(target, log))
    proxy = start_proxy(make_config(upstream))
    run, events, diag, elapsed = _run_claude(claude, proxy, work, home,
                                             "Create the file hello.txt in the current directory.")
    assert run.returncode == 0, diag

    # the tool's effect
    assert target.exists(), diag
    assert target.read_text(encoding="utf-8") == CONTENT
    # the final text, in the CLI's own result event and assistant message
    results = [e for e in events if e.get("type") == "result"]
    assert results and results[-1].get("subtype") == "success" and not results[-1].get("is_error"), diag
    assert results[-1]["result"] == FINAL_TEXT
    assistant_texts = [b.get("text") for e in events if e.get("type") == "assistant"
                       for b in e["message"]["content"] if b.get("type") == "text"]
    assert FINAL_TEXT in assistant_texts
    tool_uses = [b for e in events if e.get("type") == "assistant" for b in e["message"]["content"]
                 if b.get("type") == "tool_use"]
    assert tool_uses and tool_uses[0]["name"] == "Write" and tool_uses[0]["input"]["content"] == CONTENT

    # what the upstream saw: the tool call, then the tool result going back
    kinds = [k for k, _, _ in log]
    assert "tool-call" in kinds and "final" in kinds, kinds
    final_req = next(r for k, _, r in log if k == "final")
    tool_msgs = [m for m in final_req["messages"] if m.get("role") == "tool"]
    assert tool_msgs and tool_msgs[-1]["tool_call_id"] == "call_write_1"
    calls = [c for m in final_req["messages"] if m.get("role") == "assistant" for c in m.get("tool_calls") or ()]
    assert calls and json.loads(calls[-1]["function"]["arguments"]) == {"file_path": str(target), "content": CONTENT}
    # every request the CLI made was answered: none failed at the proxy
    snap = proxy.app.metrics.snapshot()
    assert snap["requests_failed"] == 0, snap
    print(f"claude code {subprocess.run([claude, '--version'], capture_output=True, text=True).stdout.strip()}: "
          f"{len(log)} upstream request(s) {kinds}, {elapsed:.1f}s", file=sys.stderr)


# -- a chat upstream with think tags and index-less parallel tool calls ---------

THINK_FINAL = "Both files are written."
SECOND_CONTENT = "second file\n"


def _content_chunk(text: str) -> dict:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


def _think_tag_answer(h, rec: Recorded, calls: list[tuple[str, dict]] | None, text: str):
    """MiniMax-style: reasoning inline in content as think tags split across
    chunks; tool calls Moonshot-style, parallel, each with an id and no index,
    the arguments continued by position without id or index."""
    out = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": "<th"}, "finish_reason": None}]},
           _content_chunk("ink>\nThe user wants "), _content_chunk("files written.</thi"), _content_chunk("nk>\n\n")]
    if calls:
        out.append(_content_chunk("Writing them."))
        out.append({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": "Write", "arguments": ""}}
            for call_id, _ in calls]}, "finish_reason": None}]})
        encoded = [json.dumps(args, ensure_ascii=False) for _, args in calls]
        longest = max(len(e) for e in encoded)
        for i in range(0, longest, 11):
            out.append({"choices": [{"index": 0, "delta": {"tool_calls": [
                {"function": {"arguments": e[i:i + 11]}} for e in encoded]}, "finish_reason": None}]})
        out.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    else:
        out += [_content_chunk(text[i:i + 6]) for i in range(0, len(text), 6)]
        out.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    out += [{"choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 12}}, "[DONE]"]
    sse(*out, delay=0.002)(h, rec)


def think_tag_upstream(targets: dict[str, tuple[Path, str]], log: list):
    def script(h, rec: Recorded):
        req = json.loads(rec.body)
        kind = turn_kind(req)
        if kind == "final":
            calls = None
        elif kind == "tool-call":
            calls = [(call_id, {"file_path": str(path), "content": content})
                     for call_id, (path, content) in targets.items()]
        else:
            log.append(("side", bool(req.get("stream")), req))
            _chat_answer(req, rec, h, '{"title": "Write two files"}', None)
            return
        log.append((kind, bool(req.get("stream")), req))
        if not req.get("stream"):
            json_body(chat_completion("<think>x</think>" + THINK_FINAL))(h, rec)
            return
        _think_tag_answer(h, rec, calls, THINK_FINAL)

    return script


def test_claude_code_through_think_tags_and_indexless_parallel_calls(claude, upstream, start_proxy, tmp_path):
    work, home = _dirs(tmp_path)
    targets = {"call_write_a": (work / "hello.txt", CONTENT), "call_write_b": (work / "second.txt", SECOND_CONTENT)}
    log: list = []
    upstream.on(GO_CHAT, think_tag_upstream(targets, log))
    model = ModelConfig(model_id="minimax-m2.5", endpoint="chat")
    proxy = start_proxy(make_config(upstream, models={"default": model, "fast": model}))
    run, events, diag, elapsed = _run_claude(claude, proxy, work, home,
                                             "Create hello.txt and second.txt in the current directory.")
    assert run.returncode == 0, diag

    # both parallel calls ran: neither merged into the other nor lost
    for path, content in targets.values():
        assert path.exists(), diag
        assert path.read_text(encoding="utf-8") == content
    results = [e for e in events if e.get("type") == "result"]
    assert results and results[-1].get("subtype") == "success" and not results[-1].get("is_error"), diag
    assert results[-1]["result"] == THINK_FINAL
    blocks = [b for e in events if e.get("type") == "assistant" for b in e["message"]["content"]]
    texts = [b.get("text", "") for b in blocks if b.get("type") == "text"]
    assert THINK_FINAL in texts and not any("think>" in t for t in texts), texts
    assert sorted(b["id"] for b in blocks if b.get("type") == "tool_use") == sorted(targets)

    # the reasoning went back in think tags, as MiniMax asks, with both calls
    final_req = next(r for k, _, r in log if k == "final")
    assistant = [m for m in final_req["messages"] if m.get("role") == "assistant"][-1]
    assert assistant["content"].startswith("<think>\nThe user wants files written.</think>"), assistant
    assert sorted(c["id"] for c in assistant["tool_calls"]) == sorted(targets)
    assert sorted(m["tool_call_id"] for m in final_req["messages"] if m.get("role") == "tool") == sorted(targets)
    assert proxy.app.metrics.snapshot()["requests_failed"] == 0
    print(f"claude code through think tags: {len(log)} upstream request(s), {elapsed:.1f}s", file=sys.stderr)
