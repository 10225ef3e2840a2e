"""The real Claude Code CLI on a fresh install: ``ocproxy init`` writes the
template, ``ocproxy claude -p ...`` starts the proxy in the background and
runs ``claude`` (from .cache/claude-code, see tests/test_claude_code.py)
in the environment ``ocproxy env`` describes. Only the template's upstream
URLs are changed, to a fake upstream on a local socket.

Two turns of one conversation (the second with ``--continue``):

* the upstream sees the configured default model (kimi-k2.6), never a
  ``claude-*`` name;
* Claude Code sees its own model name in every answer;
* the first turn's thinking goes back upstream in the second turn (Claude
  Code keeps thinking blocks only when the answer names the model it asked
  for), as the chat API's ``reasoning_content``.

And one run with gateway discovery: Claude Code caches every ``claude-*``
alias of ``/v1/models`` for its picker, and ``--model <alias>`` reaches
that alias's model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import requests

from tests.conftest import API_KEY, GO_CHAT, GO_MESSAGES
from tests.fakes import Recorded, json_body, sse
from tests.procs import clean_env, free_port
from tests.test_claude_code import CLAUDE, claude  # noqa: F401  (the fixture that installs the CLI)
from tests.test_e2e_client_model import anthropic_message, anthropic_sse

THOUGHT = "The user wants a greeting; turn one is thinking this."
FIRST, SECOND = "First answer: hello.", "Second answer: hello again."


def _chat_upstream(log: list):
    """Main-loop turns (they carry Claude Code's tools) answer with reasoning
    then text; side requests (titles, summaries) with a short text."""

    def script(h, rec: Recorded):
        req = json.loads(rec.body)
        main = bool(req.get("tools"))
        log.append(("main" if main else "side", req))
        text = SECOND if main and sum(1 for k, _ in log if k == "main") > 1 else FIRST if main else "ok"
        if not req.get("stream"):
            message = {"role": "assistant", "content": text}
            if main:
                message["reasoning_content"] = THOUGHT
            json_body({"id": "c1", "object": "chat.completion", "model": req["model"],
                       "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 10, "completion_tokens": 5}})(h, rec)
            return
        chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
        if main:
            chunks += [{"choices": [{"index": 0, "delta": {"reasoning_content": THOUGHT[i:i + 12]}}]}
                       for i in range(0, len(THOUGHT), 12)]
        chunks += [{"choices": [{"index": 0, "delta": {"content": text[i:i + 6]}}]} for i in range(0, len(text), 6)]
        chunks += [{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                   {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}, "[DONE]"]
        sse(*chunks, delay=0.001)(h, rec)

    return script


def _anthropic_upstream(h, rec: Recorded):
    """The template's background models (qwen on Go) speak Anthropic."""
    req = json.loads(rec.body)
    if req.get("stream"):
        sse(*anthropic_sse(req["model"], "ok"))(h, rec)
    else:
        json_body(anthropic_message(req["model"], "ok"))(h, rec)


def _run(argv: list[str], env: dict, cwd) -> tuple[subprocess.CompletedProcess, list[dict]]:
    run = subprocess.run([sys.executable, "-m", "ocproxy", *argv], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=240, stdin=subprocess.DEVNULL)
    events = [json.loads(line) for line in run.stdout.splitlines() if line.strip().startswith("{")]
    return run, events


def _init_home(tmp_path, upstream, **extra_env):
    """A home with `ocproxy init`'s template, its URLs pointed at the fake
    upstream; (home, work dir, upstream log, port, environment)."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    log: list = []
    upstream.on(GO_CHAT, _chat_upstream(log))
    upstream.on(GO_MESSAGES, _anthropic_upstream)
    port = free_port()
    env = clean_env(home, PATH=f"{CLAUDE.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                    OCPROXY_API_KEY=API_KEY, OCPROXY_PORT=str(port), DISABLE_AUTOUPDATER="1",
                    DISABLE_TELEMETRY="1", IS_SANDBOX="1", TERM="dumb", **extra_env)
    init = subprocess.run([sys.executable, "-m", "ocproxy", "init"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert init.returncode == 0, init.stderr
    config_path = home / ".config" / "ocproxy" / "config.json"
    template = config_path.read_text()
    assert template.count("https://opencode.ai/zen") >= 6
    config_path.write_text(template.replace("https://opencode.ai/zen", upstream.url("")))
    return home, work, log, port, env


def test_claude_code_through_the_init_template(claude, upstream, procs, tmp_path):  # noqa: F811
    home, work, log, port, env = _init_home(tmp_path, upstream, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1")

    first, events1 = _run(["claude", "-p", "Say hello.", "--output-format", "stream-json", "--verbose"], env, work)
    pid_file = home / ".config" / "ocproxy" / f"ocproxy-{port}.pid"
    if pid_file.exists():
        procs.adopt(int(pid_file.read_text()))
    diag = f"rc={first.returncode}\nstdout:\n{first.stdout[-3000:]}\nstderr:\n{first.stderr[-2000:]}"
    assert first.returncode == 0, diag
    assert "Started ocproxy in background" in first.stdout, diag
    second, events2 = _run(["claude", "-p", "Say it again.", "--continue", "--output-format", "stream-json",
                            "--verbose"], env, work)
    diag2 = f"rc={second.returncode}\nstdout:\n{second.stdout[-3000:]}\nstderr:\n{second.stderr[-2000:]}"
    assert second.returncode == 0, diag2
    assert "Started" not in second.stdout  # the proxy from turn one is reused
    stop = subprocess.run([sys.executable, "-m", "ocproxy", "stop"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert stop.returncode == 0, stop.stderr

    # the upstream saw the template's models, never a claude-* name
    models = [c.json.get("model") for c in upstream.calls()]
    assert models and not any(str(m).startswith("claude") for m in models), models
    mains = [req for kind, req in log if kind == "main"]
    assert len(mains) == 2, [k for k, _ in log]
    assert all(req["model"] == "kimi-k2.6" for req in mains)  # models.default of the template

    # Claude Code saw its own model name and the answers
    for events, text in ((events1, FIRST), (events2, SECOND)):
        init_event = next(e for e in events if e.get("type") == "system" and e.get("subtype") == "init")
        assistants = [e["message"] for e in events if e.get("type") == "assistant"]
        assert assistants, events
        # the session model may carry Claude Code's "[1m]" context hint, which it does not send
        asked = init_event["model"].removesuffix("[1m]")
        assert asked.startswith("claude-")
        assert all(m["model"] == asked for m in assistants), (init_event["model"], [m["model"] for m in assistants])
        result = next(e for e in events if e.get("type") == "result")
        assert result["subtype"] == "success" and result["result"] == text, result
    thinking = [b for e in events1 if e.get("type") == "assistant" for b in e["message"]["content"]
                if b.get("type") == "thinking"]
    assert thinking and thinking[0]["thinking"] == THOUGHT

    # the second turn carries the first turn's thinking back upstream
    history = mains[1]["messages"]
    earlier = [m for m in history if m.get("role") == "assistant" and FIRST in json.dumps(m.get("content"))]
    assert earlier, history
    assert earlier[0].get("reasoning_content") == THOUGHT, earlier[0]
    print(f"claude code through the init template: {len(log)} chat + "
          f"{len(upstream.calls(GO_MESSAGES))} anthropic upstream request(s); main model {mains[0]['model']}, "
          f"client model {init_event['model']}", file=sys.stderr)


def test_claude_code_discovers_the_aliases_and_an_alias_reaches_its_model(claude, upstream, procs,  # noqa: F811
                                                                          tmp_path):
    """Gateway discovery (on in `ocproxy env`; Claude Code skips it only in
    essential-traffic mode) caches the aliases Claude Code keeps for its
    picker; ``--model`` with one of them reaches that model upstream."""
    home, work, log, port, env = _init_home(tmp_path, upstream)

    run, events = _run(["claude", "-p", "Say hello.", "--model", "claude-go-glm-5.1", "--output-format",
                        "stream-json", "--verbose"], env, work)
    pid_file = home / ".config" / "ocproxy" / f"ocproxy-{port}.pid"
    if pid_file.exists():
        procs.adopt(int(pid_file.read_text()))
    diag = f"rc={run.returncode}\nstdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-2000:]}"
    assert run.returncode == 0, diag
    listed = requests.get(f"http://127.0.0.1:{port}/v1/models?limit=1000", timeout=5).json()["data"]
    assert subprocess.run([sys.executable, "-m", "ocproxy", "stop"], env=env, capture_output=True,
                          timeout=60).returncode == 0

    cache = json.loads((home / ".claude" / "cache" / "gateway-models.json").read_text())
    assert cache["baseUrl"] == f"http://127.0.0.1:{port}"
    kept = {m["id"]: m.get("display_name") for m in cache["models"]}
    aliases = {m["id"]: m["display_name"] for m in listed if m["id"].startswith("claude-")}
    assert kept == aliases  # every alias survives Claude Code's filter, with its name
    assert kept["claude-go-kimi-k2.6"] == "Kimi K2.6 (OpenCode Go)"

    mains = [req for kind, req in log if kind == "main"]
    assert mains and all(req["model"] == "glm-5.1" for req in mains), [r["model"] for r in mains]
    assert all(e["message"]["model"] == "claude-go-glm-5.1" for e in events if e.get("type") == "assistant")
    assert next(e for e in events if e.get("type") == "result")["result"] == FIRST
