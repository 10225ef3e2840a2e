"""``ocproxy models [--refresh]`` through the real CLI, against a upstream
model-list endpoint on a real socket (issue 15 item 3).

The list shape is OpenAI's ``GET /v1/models`` answer, which OpenCode's
``https://opencode.ai/zen/v1/models`` and ``/zen/go/v1/models`` serve
(https://opencode.ai/docs/zen, "Endpoints"; thndrs-docs.pages.dev notebook on
OpenCode Go: "The full model list and metadata are available from
https://opencode.ai/zen/go/v1/models").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocproxy import catalog_refresh
from ocproxy.catalog import CATALOG, GO, ZEN
from tests.fakes import FakeUpstream, json_body, raw_response, status
from tests.test_cli import run, write_config

GO_LIST = "/zen/go/v1/models"
ZEN_LIST = "/zen/v1/models"


def listing(*ids: str) -> dict:
    return {"object": "list", "data": [{"id": i, "object": "model", "created": 0, "owned_by": "opencode"} for i in ids]}


GO_IDS = [e.id for e in CATALOG if e.provider == GO and e.id != "glm-5"] + ["kimi-k3"]  # one gone, one new
ZEN_IDS = [e.id for e in CATALOG if e.provider == ZEN]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


def config_for(home: Path, upstream: FakeUpstream) -> str:
    return write_config(home, {
        "api_key": "sk-list-key",
        "opencode_go": {"base_url": upstream.url("/zen/go/v1/chat/completions")},
        "opencode_zen": {"base_url": upstream.url("/zen/v1/chat/completions")},
    })


def cache_file(home: Path) -> Path:
    return home / ".cache" / "ocproxy" / "models.json"


def lines_of(out: str, model_id: str) -> list[str]:
    return [ln for ln in out.splitlines() if ln.split()[:1] == [model_id]]


def test_good_lists_are_cached_and_shown(home, upstream):
    upstream.on(GO_LIST, json_body(listing(*GO_IDS)))
    upstream.on(ZEN_LIST, json_body(listing(*ZEN_IDS)))
    r = run(home, "models", "--refresh", "-c", config_for(home, upstream))
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr
    calls = upstream.calls()
    assert sorted(c.path for c in calls) == [GO_LIST, ZEN_LIST]
    assert all(c.headers["authorization"] == "Bearer sk-list-key" for c in calls)
    cached = json.loads(cache_file(home).read_text())["providers"]
    assert cached[GO]["ids"] == GO_IDS and cached[ZEN]["ids"] == ZEN_IDS
    new = lines_of(r.stdout, "kimi-k3")
    assert len(new) == 1 and "not in the built-in table, limits unknown" in new[0]
    assert "not in opencode-go's list" in lines_of(r.stdout, "glm-5")[0]
    # a later plain listing reads the cache without the network
    upstream.on(GO_LIST, status(500))
    again = run(home, "models")
    assert again.returncode == 0 and len(lines_of(again.stdout, "kimi-k3")) == 1
    assert len(upstream.calls()) == 2


@pytest.mark.parametrize("failure, reason", [
    (status(401, {"error": {"message": "invalid key"}}), "HTTP 401 (the API key was refused)"),
    (raw_response(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 15\r\n\r\n<html>hi</html>"),
     "answer is not JSON"),
    (json_body({"object": "list", "data": [{"name": "no id"}]}), 'has no string "id"'),
    (json_body({"models": ["a"]}), 'no "data" list'),
], ids=["401", "html", "entry-without-id", "wrong-shape"])
def test_a_failing_list_keeps_the_cached_catalog_with_one_warning(home, upstream, failure, reason):
    path = config_for(home, upstream)
    upstream.on(GO_LIST, json_body(listing(*GO_IDS)))
    upstream.on(ZEN_LIST, json_body(listing(*ZEN_IDS)))
    assert run(home, "models", "--refresh", "-c", path).returncode == 0
    before = cache_file(home).read_text()
    upstream.on(GO_LIST, failure)
    r = run(home, "models", "--refresh", "-c", path)
    assert r.returncode == 0
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("Warning:")]
    assert len(warnings) == 1 and warnings[0].startswith("Warning: opencode-go: model list not refreshed, "
                                                          "keeping the cached list: ")
    assert reason in warnings[0] and "sk-list-key" not in r.stderr
    assert json.loads(cache_file(home).read_text())["providers"][GO] == json.loads(before)["providers"][GO]
    assert len(lines_of(r.stdout, "kimi-k3")) == 1  # still listed from the cache


def test_no_cache_and_a_refused_key_keeps_the_built_in_catalog(home, upstream):
    upstream.on(GO_LIST, status(401))
    upstream.on(ZEN_LIST, status(401))
    r = run(home, "models", "--refresh", "-c", config_for(home, upstream))
    assert r.returncode == 0
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("Warning:")]
    assert [w.split(":")[1].strip() for w in warnings] == [GO, ZEN]
    assert all("keeping the built-in catalog" in w for w in warnings)
    assert not cache_file(home).exists()
    for entry in CATALOG:
        assert [entry.id, entry.provider, entry.endpoint] in [ln.split()[:3] for ln in lines_of(r.stdout, entry.id)]


def test_unreachable_list_is_a_warning_not_a_traceback(home, upstream):
    path = write_config(home, {"api_key": "k", "opencode_go": {"base_url": "http://127.0.0.1:9/v1/chat/completions"},
                               "opencode_zen": {"base_url": upstream.url("/zen/v1/chat/completions")}})
    upstream.on(ZEN_LIST, json_body(listing(*ZEN_IDS)))
    r = run(home, "models", "--refresh", "-c", path)
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert "cannot reach http://127.0.0.1:9/v1/models" in r.stderr


def test_models_table_columns_line_up(home):
    r = run(home, "models")
    table = [ln for ln in r.stdout.splitlines() if ln.startswith("  ")]
    header = next(ln for ln in table if ln.split()[0] == "ID")
    start = header.index("CONTEXT")
    kimi = lines_of(r.stdout, "kimi-k2.6")[0]
    assert kimi[start:].split()[:7] == ["262k", "66k", "yes", "reasoning_content", "0.95", "4", "0.16"]
    opus = lines_of(r.stdout, "claude-opus-4-8")[0]
    zen_header = [ln for ln in table if ln.split()[0] == "ID"][1]
    assert opus[zen_header.index("CONTEXT"):].split()[:2] == ["1M", "128k"]


@pytest.mark.parametrize("base, url", [
    ("https://opencode.ai/zen/go/v1/chat/completions", "https://opencode.ai/zen/go/v1/models"),
    ("https://opencode.ai/zen/v1/chat/completions/", "https://opencode.ai/zen/v1/models"),
    ("http://gw.local/v1", "http://gw.local/v1/models"),
])
def test_list_url(base, url):
    from ocproxy.config import ProviderConfig

    assert catalog_refresh.list_url(ProviderConfig(base_url=base, anthropic_base_url="")) == url


def test_the_configured_key_goes_out_even_with_a_netrc_entry(home, upstream):
    (home / ".netrc").write_text("machine 127.0.0.1 login someone password other-secret\n")
    (home / ".netrc").chmod(0o600)
    upstream.on(GO_LIST, json_body(listing(*GO_IDS)))
    upstream.on(ZEN_LIST, json_body(listing(*ZEN_IDS)))
    assert run(home, "models", "--refresh", "-c", config_for(home, upstream)).returncode == 0
    assert {c.headers["authorization"] for c in upstream.calls()} == {"Bearer sk-list-key"}


def test_an_id_only_the_refreshed_list_names_is_known_to_validate_and_routing(home, upstream, start_proxy, sdk):
    """After a refresh, a model newer than the built-in table (kimi-k3) is
    no validate warning, and a client asking for it by name reaches it on
    the provider whose list named it."""
    import dataclasses

    from ocproxy.config import load_config
    from tests.fakes import chat_completion

    path = write_config(home, {
        "api_key": "sk-list-key",
        "models": {"default": {"model_id": "kimi-k3"}},
        "quota": {"enabled": False},
        "opencode_go": {"base_url": upstream.url("/zen/go/v1/chat/completions")},
        "opencode_zen": {"base_url": upstream.url("/zen/v1/chat/completions")},
    })
    before = run(home, "validate", "-c", path)
    assert '"kimi-k3" is not in the opencode-go catalog' in before.stdout + before.stderr
    upstream.on(GO_LIST, json_body(listing(*GO_IDS)))
    upstream.on(ZEN_LIST, json_body(listing(*ZEN_IDS)))
    assert run(home, "models", "--refresh", "-c", path).returncode == 0
    after = run(home, "validate", "-c", path)
    assert after.returncode == 0 and "kimi-k3" not in after.stdout + after.stderr, after.stdout + after.stderr

    config = load_config(path, env={"HOME": str(home)})
    assert "kimi-k3" in config.listed_models[GO]
    upstream.on("/zen/go/v1/chat/completions", json_body(chat_completion("from k3", model="kimi-k3")))
    proxy = start_proxy(dataclasses.replace(config, port=0, respect_requested_model=True,
                                            models={"default": dataclasses.replace(config.models["default"],
                                                                                   model_id="kimi-k2.6")}))
    reply = sdk(proxy).messages.create(model="kimi-k3", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    assert reply.content[0].text == "from k3" and reply.model == "kimi-k3"
    assert [c.json["model"] for c in upstream.calls("/zen/go/v1/chat/completions")] == ["kimi-k3"]
