"""``ocproxy env`` and ``ocproxy claude``: Claude Code pointed at this proxy.

``env`` prints ``export`` lines (``eval "$(ocproxy env)"``): the base URL
and token, gateway model discovery on (the picker then lists the
``claude-go-*``/``claude-zen-*`` aliases of ``GET /v1/models``), and for
each of Claude Code's opus/sonnet/haiku slots its usual model name with a
``_NAME`` that says which model the proxy really routes it to.
``claude [args...]`` starts the proxy in the background when nothing
answers at the configured address, then replaces itself with ``claude``
running in that environment.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from typing import Mapping

from ocproxy import daemon
from ocproxy.aliases import display_name
from ocproxy.config import Config, ConfigError, load_config, resolve_config_path
from ocproxy.config.types import ModelConfig

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_CONFIG = 2

#: Claude Code's slot -> the model name it sends for it; each holds the
#: family keyword (opus, sonnet, haiku) that model_family_overrides map.
SLOTS = (
    ("OPUS", "claude-opus-4-8"),
    ("SONNET", "claude-sonnet-4-6"),
    ("HAIKU", "claude-haiku-4-5"),
)
#: A ``models`` entry by this name becomes CLAUDE_CODE_SUBAGENT_MODEL.
SUBAGENT_KEY = "subagent"
#: How long ``ocproxy claude`` waits for a proxy it started to answer.
START_WAIT_S = 20.0


def base_url(config: Config) -> str:
    host = config.host
    if host in ("", "0.0.0.0", "::"):  # listening everywhere: reach it on loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.port}"


def routed_model(name: str, config: Config) -> ModelConfig | None:
    """The first model a streamed Claude Code turn for ``name`` reaches, as
    routing decides it (None when the config cannot route it)."""
    # Imported here: routing loads the token encoder, which only env and
    # claude need, not every `ocproxy` command that imports this module.
    from ocproxy.request import parse_messages_request
    from ocproxy.routing.chain import RoutingError, build_route

    body = {"model": name, "max_tokens": 1, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    try:
        return build_route(parse_messages_request(json.dumps(body).encode()), config, True).primary
    except RoutingError:
        return None


def env_vars(config: Config) -> dict[str, str]:
    """The variables, in print order."""
    out = {
        "ANTHROPIC_BASE_URL": base_url(config),
        # any token works unless client_api_keys is set
        "ANTHROPIC_AUTH_TOKEN": config.client_api_keys[0].key if config.client_api_keys else "ocproxy",
        "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1",
    }
    for slot, name in SLOTS:
        model = routed_model(name, config)
        out[f"ANTHROPIC_DEFAULT_{slot}_MODEL"] = name
        if model is not None:
            out[f"ANTHROPIC_DEFAULT_{slot}_MODEL_NAME"] = display_name(model.provider, model.model_id)
    subagent = config.models.get(SUBAGENT_KEY)
    if subagent is not None and routed_model(SUBAGENT_KEY, config) == subagent:
        out["CLAUDE_CODE_SUBAGENT_MODEL"] = SUBAGENT_KEY
    return out


def export_lines(variables: Mapping[str, str]) -> str:
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in variables.items())


def _load(config_arg: str | None) -> tuple[Config | None, str | None]:
    path = resolve_config_path(config_arg, os.environ)
    try:
        return load_config(path, os.environ), path
    except ConfigError as exc:
        print(f"Error: invalid config ({len(exc.problems)} problems); run `ocproxy validate`", file=sys.stderr)
        return None, path


def cmd_env(config_arg: str | None) -> int:
    config, _ = _load(config_arg)
    if config is None:
        return EXIT_BAD_CONFIG
    sys.stdout.write(export_lines(env_vars(config)))
    return EXIT_OK


def answering(url: str) -> bool:
    """An ocproxy answers ``/health`` at ``url``."""
    import urllib.request  # only `ocproxy claude` asks; the status line must start fast

    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as resp:
            return json.loads(resp.read()).get("service") == "ocproxy"
    except (OSError, ValueError, urllib.error.URLError):
        return False


def ensure_running(config: Config, path: str | None) -> bool:
    """True once a proxy answers at the configured address, starting one
    in the background (``serve -b``) when none does."""
    url = base_url(config)
    if answering(url):
        return True
    pid = daemon.read_pid(daemon.pid_path(config.port))
    if pid is None or not daemon.is_alive(pid):  # a live one may still be starting
        child = ["serve"] + (["--config", path] if path else [])
        if daemon.start_background(child, config.port) != daemon.EXIT_OK:
            return False
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        if answering(url):
            return True
        time.sleep(0.1)
    return False


def cmd_claude(args: list[str]) -> int:
    config, path = _load(None)
    if config is None:
        return EXIT_BAD_CONFIG
    program = shutil.which("claude")
    if program is None:
        print("Error: `claude` is not on PATH (install Claude Code: npm install -g @anthropic-ai/claude-code)",
              file=sys.stderr)
        return EXIT_ERROR
    if not ensure_running(config, path):
        print(f"Error: no proxy answers at {base_url(config)}; see {daemon.log_path(config.port)}",
              file=sys.stderr)
        return EXIT_ERROR
    sys.stdout.flush()
    os.execve(program, [program, *args], {**os.environ, **env_vars(config)})
    return EXIT_ERROR  # not reached: execve replaces this process
