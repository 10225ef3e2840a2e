"""``ocproxy env`` and ``ocproxy claude`` through the real CLI.

``env``'s output is evaluated by a real shell; ``claude`` runs with a
stand-in ``claude`` program first on PATH that records the arguments and
environment it was exec'd with (the real CLI runs in
tests/test_claude_code_init.py).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess

import requests

from tests.procs import clean_env, cli, config_dict, free_port

RECORDER = """#!/bin/sh
python3 - "$@" <<'EOF'
import json, os, sys
keys = [k for k in os.environ if k.startswith(("ANTHROPIC_", "CLAUDE_CODE_"))]
json.dump({"argv": sys.argv[1:], "env": {k: os.environ[k] for k in keys}}, open(os.environ["RECORD_TO"], "w"))
EOF
"""


def _shell_env(output: str) -> dict:
    """Evaluate ``export`` lines in sh and read back what it set."""
    script = output + 'env -0\n'
    run = subprocess.run(["sh", "-c", script], capture_output=True, env={"PATH": "/usr/bin:/bin"}, timeout=30)
    assert run.returncode == 0, run.stderr
    pairs = [item.split("=", 1) for item in run.stdout.decode().split("\0") if "=" in item]
    return {k: v for k, v in pairs}


def test_env_prints_shell_quoted_exports(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    config = {
        "api_key": "sk-x", "host": "0.0.0.0", "port": 4567, "client_api_keys": ["it's a $key"],
        "models": {"default": {"provider": "opencode-go", "model_id": "glm-5.1"},
                   "background": {"provider": "opencode-go", "model_id": "qwen3.5-plus"},
                   "subagent": {"provider": "opencode-zen", "model_id": "gpt-5.5"}},
        "model_family_overrides": {"opus": {"provider": "opencode-zen", "model_id": "claude-opus-4-8"},
                                   "sonnet": "default", "haiku": "background"},
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    run = cli(clean_env(home), "env", "-c", str(path))
    assert run.returncode == 0, run.stderr
    assert all(line.startswith("export ") for line in run.stdout.splitlines())
    got = _shell_env(run.stdout)
    assert {k: v for k, v in got.items() if k.startswith(("ANTHROPIC_", "CLAUDE_CODE_"))} == {
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:4567",  # 0.0.0.0 is reached on loopback
        "ANTHROPIC_AUTH_TOKEN": "it's a $key",
        "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1",
        "ANTHROPIC_DEFAULT_OPUS_MODEL": "claude-opus-4-8",
        "ANTHROPIC_DEFAULT_OPUS_MODEL_NAME": "Claude Opus 4.8 (OpenCode Zen)",
        "ANTHROPIC_DEFAULT_SONNET_MODEL": "claude-sonnet-4-6",
        "ANTHROPIC_DEFAULT_SONNET_MODEL_NAME": "GLM 5.1 (OpenCode Go)",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "claude-haiku-4-5",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL_NAME": "Qwen3.5 Plus (OpenCode Go)",
        "CLAUDE_CODE_SUBAGENT_MODEL": "subagent",
    }


def test_env_of_the_builtin_config_names_the_template_models(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    run = cli(clean_env(home, OCPROXY_API_KEY="sk-x"), "env")
    assert run.returncode == 0, run.stderr
    got = _shell_env(run.stdout)
    assert got["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:3456" and got["ANTHROPIC_AUTH_TOKEN"] == "ocproxy"
    assert got["ANTHROPIC_DEFAULT_OPUS_MODEL_NAME"] == "Kimi K2.6 (OpenCode Go)"
    assert got["ANTHROPIC_DEFAULT_HAIKU_MODEL_NAME"] == "Qwen3.5 Plus (OpenCode Go)"
    assert "CLAUDE_CODE_SUBAGENT_MODEL" not in got  # no models.subagent in the template


def test_env_with_a_bad_config_exits_2(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    path = tmp_path / "c.json"
    path.write_text('{"port": "x"}')
    run = cli(clean_env(home), "env", "-c", str(path))
    assert run.returncode == 2 and run.stdout == "" and "ocproxy validate" in run.stderr


def test_claude_starts_the_proxy_once_and_execs_claude_with_the_environment(tmp_path, upstream, procs):
    home = tmp_path / "home"
    home.mkdir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "claude"
    fake.write_text(RECORDER)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    port = free_port()
    config_path = home / ".config" / "ocproxy" / "config.json"
    config_path.parent.mkdir(parents=True)
    config_path.write_text(json.dumps(config_dict(upstream, port, "sk-up")))
    record = tmp_path / "record.json"
    env = clean_env(home, PATH=f"{bindir}:{os.environ['PATH']}", RECORD_TO=str(record))

    args = ["-p", "hello there", "-c", "--model", "claude-go-glm-5.1", "--help"]
    first = cli(env, "claude", *args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Started ocproxy in background" in first.stdout
    pid = int((home / ".config" / "ocproxy" / f"ocproxy-{port}.pid").read_text())
    procs.adopt(pid)
    seen = json.loads(record.read_text())
    assert seen["argv"] == args  # every argument reaches claude untouched
    assert seen["env"]["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{port}"
    assert seen["env"]["ANTHROPIC_DEFAULT_OPUS_MODEL_NAME"] == "Kimi K2.6 (OpenCode Go)"
    assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["service"] == "ocproxy"

    record.unlink()
    second = cli(env, "claude", "-p", "again")
    assert second.returncode == 0, second.stderr
    assert "Started" not in second.stdout  # already running: not started twice
    assert json.loads(record.read_text())["argv"] == ["-p", "again"]
    assert int((home / ".config" / "ocproxy" / f"ocproxy-{port}.pid").read_text()) == pid

    stop = cli(env, "stop")  # returns once the server is gone
    assert stop.returncode == 0, stop.stderr


def test_claude_missing_program_says_how_to_install(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    run = cli(clean_env(home, PATH="/nonexistent", OCPROXY_API_KEY="k"), "claude", "-p", "x")
    assert run.returncode == 1 and "`claude` is not on PATH" in run.stderr
