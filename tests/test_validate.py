"""``ocproxy validate`` through the real CLI (a subprocess): each mistake a
user makes, its message, and the exit code (2 only for errors).

Plus table tests for the pure checks in ``ocproxy.config.validate`` and
``--online`` against a local model-list endpoint (200, 401, 403).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ocproxy.config import CONFIG_SCHEMA, default_template
from ocproxy.config.validate import ERROR, WARNING, findings, json_syntax_message, known_keys
from tests.test_cli import run, write_config


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


def good() -> dict:
    """The init template with a literal key: valid, no warning."""
    data = default_template()
    data["api_key"] = "sk-test-0123456789"
    return data


def errors_of(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    if not lines or not lines[0].startswith("Error: invalid config"):
        return []
    return [ln.strip() for ln in lines[1:] if ln.startswith("  ")]


def warnings_of(stderr: str) -> list[str]:
    return [ln[len("WARNING: "):] for ln in stderr.splitlines() if ln.startswith("WARNING: ")]


def test_the_template_is_clean(home):
    r = run(home, "validate", "-c", write_config(home, good()))
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and r.stdout.startswith("Configuration is valid!")


def _edit(change) -> dict:
    data = good()
    change(data)
    return data


CASES = [
    # (id, change, exit code, expected error lines (substrings), expected warnings (substrings))
    ("typo-in-model", lambda d: d["models"]["default"].update(temprature=0.2), 2,
     ['$.models.default.temprature: unknown key "temprature" in $.models.default (did you mean "temperature"?)'], []),
    ("typo-top-level", lambda d: d.update(hot_relaod=True), 2,
     ['$.hot_relaod: unknown key "hot_relaod" at the top level (did you mean "hot_reload"?)'], []),
    ("typo-in-fallback-entry", lambda d: d["fallbacks"]["default"][0].update(modelid="glm-5"), 2,
     ['$.fallbacks.default[0].modelid: unknown key "modelid"', 'did you mean "model_id"?'], []),
    ("typo-in-provider-block", lambda d: d["opencode_go"].update(timeout=5), 2,
     ['$.opencode_go.timeout: unknown key "timeout"', 'did you mean "timeout_ms"?'], []),
    ("unknown-model-id", lambda d: d["models"]["think"].update(model_id="glm-5.11"), 0,
     [], ['$.models.think.model_id: "glm-5.11" is not in the opencode-go catalog', "nearest: glm-5.1"]),
    ("model-on-the-other-provider", lambda d: d["models"]["complex"].update(model_id="gpt-5.5"), 0,
     [], ['$.models.complex.model_id: "gpt-5.5" is not in the opencode-go catalog',
          'opencode-zen serves it: set "provider": "opencode-zen"']),
    ("fallback-unknown-model", lambda d: d["fallbacks"]["fast"].append({"provider": "opencode-go", "model_id": "kimi-k9"}), 0,
     [], ['$.fallbacks.fast[2].model_id: "kimi-k9" is not in the opencode-go catalog', "nearest: kimi-k2.6"]),
    ("fallback-without-model", lambda d: d["fallbacks"]["fast"].append({"provider": "opencode-go"}), 2,
     ["$.fallbacks.fast[2].model_id: no model_id"], []),
    ("fallback-chain-for-nothing", lambda d: d["fallbacks"].update(defualt=[{"model_id": "glm-5"}]), 2,
     ['$.fallbacks.defualt: chain "defualt" belongs to no scenario', 'did you mean "default"?'], []),
    ("scenario-without-model", lambda d: d["models"]["think"].pop("model_id"), 2,
     ["$.models.think.model_id: no model_id"], []),
    ("no-default-scenario", lambda d: d["models"].pop("default"), 2,
     ["$.models.default: missing"], []),
    ("url-without-scheme", lambda d: d["opencode_go"].update(base_url="opencode.ai/zen/go/v1/chat/completions"), 2,
     ['$.opencode_go.base_url: "opencode.ai/zen/go/v1/chat/completions" has no http:// or https:// scheme'], []),
    ("url-without-host", lambda d: d["opencode_zen"].update(responses_base_url="https:///v1/responses"), 2,
     ['$.opencode_zen.responses_base_url: "https:///v1/responses" has no host'], []),
    ("family-override-unknown-model", lambda d: d["model_family_overrides"].update(opus="kimi-k2.66"), 2,
     ['$.model_family_overrides.opus: model_family_overrides["opus"] names unknown model "kimi-k2.66"'], []),
]


@pytest.mark.parametrize("change, code, errors, warnings", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_validate_catches(home, change, code, errors, warnings):
    r = run(home, "validate", "-c", write_config(home, _edit(change)))
    print(f"$ ocproxy validate  (exit {r.returncode})\n{r.stdout}{r.stderr}")  # for the closing note
    assert r.returncode == code, r.stderr
    got_errors, got_warnings = errors_of(r.stderr), warnings_of(r.stderr)
    for fragment in errors:
        assert any(fragment in line for line in got_errors), (fragment, r.stderr)
    for fragment in warnings:
        assert any(fragment in line for line in got_warnings), (fragment, r.stderr)
    assert bool(got_errors) == bool(errors) and bool(got_warnings) == bool(warnings), r.stderr
    assert ("Configuration is valid!" in r.stdout) == (code == 0)
    assert "Traceback" not in r.stderr


def test_every_mistake_at_once_is_listed_with_errors_before_warnings(home):
    def change(d):
        d["models"]["default"]["temprature"] = 0.2
        d["models"]["think"]["model_id"] = "glm-5.11"
        d["opencode_go"]["base_url"] = "opencode.ai/x"
        d["port"] = "3456"  # a type mistake: the loader's
    r = run(home, "validate", "-c", write_config(home, _edit(change)))
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert lines[0] == "Error: invalid config: 3 problems"
    assert [ln.split(":")[0].strip() for ln in lines[1:4]] == ["$.models.default.temprature", "$.opencode_go.base_url",
                                                                "$.port"]
    assert lines[4].startswith("WARNING: $.models.think.model_id")


@pytest.mark.parametrize("text, where", [
    ('{\n  "api_key": "k",\n  "port": 3456,\n}\n', "trailing comma at line 3 column 15"),
    ('{"api_key": "k", "api_keys": ["a", "b",]}', "trailing comma at line 1 column 39"),
    ('{\n  "api_key": "k"\n  "port": 1\n}', "Expecting ',' delimiter at line 3 column 3"),
    ('{"api_key" "k"}', "Expecting ':' delimiter at line 1 column 12"),
], ids=["object-trailing-comma", "array-trailing-comma", "missing-comma", "missing-colon"])
def test_json_syntax_error_names_the_real_place(home, text, where):
    r = run(home, "validate", "-c", write_config(home, text))
    print(r.stderr)
    assert r.returncode == 2
    assert where in r.stderr, r.stderr
    assert r.stderr.startswith("Error: invalid config: 1 problem\n  $: invalid JSON in ")


def test_json_syntax_message_points_at_the_comma():
    text = '{"a": [1, 2 ,\n   ]}'
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        assert json_syntax_message(text, exc).startswith("trailing comma at line 1 column 13")


def test_known_keys_come_from_the_schema():
    assert known_keys([]) == sorted(CONFIG_SCHEMA["properties"])
    model_keys = sorted(CONFIG_SCHEMA["$defs"]["model"]["properties"])
    for parts in (["models", "x"], ["fallbacks", "x", 0], ["model_overrides", "x"], ["model_family_overrides", "x"]):
        assert known_keys(parts) == model_keys, parts
    assert "level" in known_keys(["logging"]) and "threshold" in known_keys(["circuit_breaker"])


def test_free_form_objects_are_not_checked():
    data = good()
    data["models"]["default"]["thinking"] = {"type": "enabled", "budget_tokens": 1000}
    data["models"]["my-own-name"] = {"provider": "opencode-go", "model_id": "glm-5"}
    assert findings(data) == []


def test_severities():
    data = good()
    data["models"]["default"]["model_id"] = "brand-new-model"
    data["models"]["fast"]["vison"] = True
    got = {(f.severity, f.path) for f in findings(data)}
    assert got == {(WARNING, "$.models.default.model_id"), (ERROR, "$.models.fast.vison")}


# -- --online -------------------------------------------------------------------------


class _ModelList(BaseHTTPRequestHandler):
    """GET <prefix>/v1/models: 200 for the good key; the status named by the
    path prefix (/401/..., /403/...) for any other."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        refused = self.path.split("/")[1]
        if self.headers.get("Authorization") == "Bearer sk-good-key-000" or refused == "ok":
            body, code = json.dumps({"object": "list", "data": [{"id": "kimi-k2.6"}, {"id": "glm-5.1"}]}), 200
        else:
            body, code = json.dumps({"error": {"message": "Invalid API key"}}), int(refused)
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def model_list():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ModelList)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(5)
    server.server_close()


def test_online_reports_refused_keys_per_provider(home, model_list):
    base = f"http://127.0.0.1:{model_list.server_port}"
    data = good()
    data["api_keys"] = ["sk-good-key-000", "sk-bad-key-111"]
    data["opencode_go"]["base_url"] = f"{base}/401/go/v1/chat/completions"
    data["opencode_zen"]["base_url"] = f"{base}/403/zen/v1/chat/completions"
    r = run(home, "validate", "--online", "-c", write_config(home, data))
    print(r.stdout + r.stderr)
    assert r.returncode == 2
    errors = errors_of(r.stderr)
    assert errors == [
        f"$.opencode_go: opencode-go: key 2 of 2 was refused by {base}/401/go/v1/models (HTTP 401)",
        f"$.opencode_zen: opencode-zen: key 2 of 2 was refused by {base}/403/zen/v1/models (HTTP 403)",
    ]
    assert r.stdout.splitlines() == [f"  opencode-go: key 1 of 2 accepted by {base}/401/go/v1/models (HTTP 200, 2 models listed)",
                                     f"  opencode-zen: key 1 of 2 accepted by {base}/403/zen/v1/models (HTTP 200, 2 models listed)"]
    assert "sk-bad-key-111" not in r.stdout + r.stderr and "sk-good-key-000" not in r.stdout + r.stderr
    paths = sorted({p for p, _ in model_list.seen})
    assert paths == ["/401/go/v1/models", "/403/zen/v1/models"]


def test_online_all_keys_accepted(home, model_list):
    data = good()
    data["opencode_go"]["base_url"] = f"http://127.0.0.1:{model_list.server_port}/ok/v1/chat/completions"
    data["model_overrides"] = {}  # the template's Zen models: without them only Go is in use
    r = run(home, "validate", "--online", "-c", write_config(home, data))
    assert r.returncode == 0, r.stderr
    assert "  opencode-go: the key accepted by" in r.stdout and "2 models listed" in r.stdout
    assert [p for p, _ in model_list.seen] == ["/ok/v1/models"]


def test_online_unreachable_provider_is_an_error(home):
    from tests.procs import free_port

    data = good()
    data["opencode_go"]["base_url"] = f"http://127.0.0.1:{free_port()}/v1/chat/completions"  # nothing listens
    data["model_overrides"] = {}
    r = run(home, "validate", "--online", "-c", write_config(home, data))
    assert r.returncode == 2
    assert errors_of(r.stderr) == [f"$.opencode_go: opencode-go: cannot reach {data['opencode_go']['base_url'][:-17]}"
                                   "/models: ConnectionError"]
