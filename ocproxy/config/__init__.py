"""Configuration: typed objects built once from the JSON file.

``types`` holds the frozen dataclasses (and every default), ``schema`` the
rules a config must follow, ``template`` the file ``ocproxy init`` writes,
and ``load`` the way from a file to a validated ``Config``. The names below
are the public interface; ``from ocproxy.config import ...`` is the way to
use them. Importing this package does not import jsonschema (the schema
validator is built on first use).
"""

from ocproxy.catalog import ENDPOINTS, GO, ZEN, normalise_provider
from ocproxy.config.load import (
    API_KEY_REQUIRED,
    ENV_PREFIXES,
    apply_env_overrides,
    config_dir,
    env_lookup,
    expand_user,
    home_dir,
    interpolate,
    legacy_config_paths,
    load_config,
    primary_config_path,
    resolve_config_path,
    semantic_problems,
)
from ocproxy.config.schema import (
    CONFIG_SCHEMA,
    ConfigError,
    Problem,
    json_path,
    rule_problems,
    type_problems,
)
from ocproxy.config.template import default_template
from ocproxy.config.types import (
    DEFAULT_GO,
    DEFAULT_HEARTBEAT_MS,
    DEFAULT_TIMEOUT_MS,
    DEFAULT_ZEN,
    DEFAULTS,
    ClientKey,
    Config,
    ModelConfig,
    ProviderConfig,
)

__all__ = [
    "API_KEY_REQUIRED",
    "CONFIG_SCHEMA",
    "DEFAULTS",
    "DEFAULT_GO",
    "DEFAULT_HEARTBEAT_MS",
    "DEFAULT_TIMEOUT_MS",
    "DEFAULT_ZEN",
    "ENDPOINTS",
    "ENV_PREFIXES",
    "GO",
    "ZEN",
    "ClientKey",
    "Config",
    "ConfigError",
    "ModelConfig",
    "Problem",
    "ProviderConfig",
    "apply_env_overrides",
    "config_dir",
    "default_template",
    "env_lookup",
    "expand_user",
    "home_dir",
    "interpolate",
    "json_path",
    "legacy_config_paths",
    "load_config",
    "normalise_provider",
    "primary_config_path",
    "resolve_config_path",
    "rule_problems",
    "semantic_problems",
    "type_problems",
]
