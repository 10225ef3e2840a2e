"""Helpers for tests that load config files: each writes under ``tmp_path``
with its own env dict, so the real HOME and environment are never read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocproxy.config import Config, ConfigError, Problem, load_config


def write(tmp_path: Path, data, name: str = "config.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def load(tmp_path: Path, data, env=None, **kw) -> Config:
    env = {"HOME": str(tmp_path), **(env or {})}
    return load_config(write(tmp_path, data), env, **kw)


def problems_of(tmp_path: Path, data, env=None, **kw) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, data, env, **kw)
    return list(info.value.problems)


def paths_of(tmp_path: Path, data, env=None) -> list[str]:
    return [p.path for p in problems_of(tmp_path, data, env)]
