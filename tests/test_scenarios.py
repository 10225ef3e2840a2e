"""Scenario detection: long context, streaming, keyword rules."""

import pytest

from ocproxy.config import Config, ModelConfig
from ocproxy.routing.scenarios import detect_scenario, long_context_threshold

T60K = Config(models={"long_context": ModelConfig(model_id="minimax-m3", context_threshold=60_000)})
T60K_STREAM_ON = Config(
    models={"long_context": ModelConfig(model_id="minimax-m3", context_threshold=60_000)},
    enable_streaming_scenario_routing=True,
)


def u(text):
    return ("user", text)


# worked examples (threshold 60000)
EXAMPLES_6_1 = [
    ("hello-default", [u("Hello, how are you?")], 100, "default"),
    ("architect-complex", [u("Architect a new microservice for user authentication")], 100, "complex"),
    ("refactor-70000-long_context", [u("Refactor this code")], 70_000, "long_context"),
    ("analyze-think", [u("Analyze the tradeoffs of this design")], 100, "think"),
    ("step-by-step-think", [u("Think through this problem step by step")], 100, "think"),
    ("antThinking-assistant-think", [("assistant", "<antThinking>x</antThinking>"), u("hi")], 100, "think"),
    ("what-is-background", [u("What is a goroutine?")], 100, "background"),
    ("function-blocks-background", [u("What is the function of this?")], 100, "default"),
    ("list-directory-background", [u("list directory contents")], 100, "background"),
]


@pytest.mark.parametrize("pairs, count, expected", [e[1:] for e in EXAMPLES_6_1], ids=[e[0] for e in EXAMPLES_6_1])
@pytest.mark.parametrize("config", [T60K, T60K_STREAM_ON], ids=["non-streaming", "streaming-toggle-on"])
def test_scenario_examples(config, pairs, count, expected):
    streaming = config.enable_streaming_scenario_routing
    assert detect_scenario(pairs, count, config, streaming) == expected


RULES_6_1 = [
    ("threshold-strict-equal-not-long", [u("hello")], 60_000, "default"),
    ("threshold-plus-one-long", [u("hello")], 60_001, "long_context"),
    ("complex-case-insensitive", [u("please REFACTOR it")], 1, "complex"),
    ("complex-system-role", [("system", "implement it"), u("hi")], 1, "complex"),
    ("complex-assistant-ignored", [("assistant", "I will implement it"), u("hi")], 1, "default"),
    ("complex-beats-think", [u("think about how to refactor")], 1, "complex"),
    ("complex-tool-result-text-searched", [u("[output of bash]")], 1, "complex"),
    ("think-assistant-ignored", [("assistant", "let me think"), u("hi")], 1, "default"),
    ("antThinking-case-sensitive", [("assistant", "ANTTHINKING"), u("hi")], 1, "default"),
    ("antThinking-any-role", [u("antThinking")], 1, "think"),
    ("plan-substring-of-airplane", [u("airplane mode")], 1, "think"),
    ("background-dir-matches-redirect", [u("redirect stdout")], 1, "background"),
    ("background-blocked-by-add-in-address", [u("what is my address")], 1, "default"),
    ("background-blocked-by-tool-use-history", [("assistant", "[Tool Use: Read]"), u("what is x")], 1, "default"),
    ("background-blocker-any-role", [("assistant", "I could write it"), u("what's up")], 1, "default"),
    ("background-word-any-role", [("assistant", "check status"), u("ok")], 1, "background"),
    ("no-cross-message-match", [u("what i"), u("s x")], 1, "default"),
    ("empty-default", [], 0, "default"),
    ("fast-never-produced", [u("fast please")], 1, "default"),
]


@pytest.mark.parametrize("pairs, count, expected", [e[1:] for e in RULES_6_1], ids=[e[0] for e in RULES_6_1])
def test_scenario_rules(pairs, count, expected):
    assert detect_scenario(pairs, count, T60K, False) == expected


STREAMING_6_2 = [
    ("T256000-40955-fast", 256_000, 40_955, "fast"),
    ("T256000-300000-long_context", 256_000, 300_000, "long_context"),
    ("no-config-90000-fast", None, 90_000, "fast"),
    ("no-config-110000-long_context", None, 110_000, "long_context"),
    ("no-config-100000-strict-fast", None, 100_000, "fast"),
]


@pytest.mark.parametrize("threshold, count, expected", [e[1:] for e in STREAMING_6_2], ids=[e[0] for e in STREAMING_6_2])
def test_streaming_toggle_off(threshold, count, expected):
    config = Config() if threshold is None else Config(
        models={"long_context": ModelConfig(model_id="m", context_threshold=threshold)})
    assert detect_scenario([u("Architect and think")], count, config, True) == expected


def test_complex_text_streams_fast_when_toggle_off():
    assert detect_scenario([u("Refactor the architecture")], 10, T60K, True) == "fast"


@pytest.mark.parametrize(
    "models, expected",
    [
        ({}, 100_000),
        ({"long_context": ModelConfig(model_id="m")}, 100_000),
        ({"long_context": ModelConfig(model_id="m", context_threshold=-5)}, 100_000),
        ({"long_context": ModelConfig(model_id="m", context_threshold=256_000)}, 256_000),
        ({"default": ModelConfig(model_id="m", context_threshold=5)}, 100_000),
    ],
    ids=["T-no-entry", "T-zero-means-default", "T-negative-means-default",
         "T-configured", "T-only-long_context-entry-counts"],
)
def test_long_context_threshold(models, expected):
    assert long_context_threshold(Config(models=models)) == expected
