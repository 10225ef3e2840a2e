"""The ``ocproxy`` command: serve, stop, status, init, validate, models,
env, claude, usage, statusline, systemd-unit.

Every user error ends as ``Error: ...`` on stderr and an exit code (1 an
error, 2 a bad config, 3 "not running" from stop/status), never as a
traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from typing import Sequence

from ocproxy import __version__

# The subcommands' modules are imported where they are used: `ocproxy
# statusline` runs on every Claude Code prompt and must start fast.
from ocproxy.initfile import LIMIT_NOFILE, write_private_config
from ocproxy.config import (
    Config,
    ConfigError,
    default_template,
    expand_user,
    load_config,
    primary_config_path,
    resolve_config_path,
)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_CONFIG = 2

INSTALL_HINT = (
    "# Save as ~/.config/systemd/user/ocproxy.service, then run:\n"
    "#   systemctl --user daemon-reload && systemctl --user enable --now ocproxy"
)


def _err(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr)


def _print_problems(header: str, exc: ConfigError) -> None:
    count = len(exc.problems)
    _err(f"{header}: {count} problem{'s' if count != 1 else ''}")
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is out of range (1-65535)")
    return value


def mask_key(key: str) -> str:
    """First 8 characters + ``...``, but never more than half of the key.

    Go printed a short key in full; half is enough to recognise it.
    """
    return key[: min(8, len(key) // 2)] + "..."


def _show_warnings(warnings: list[str]) -> None:
    for message in warnings:
        print(f"WARNING: {message}", file=sys.stderr)


def _load(path: str | None, **overrides) -> tuple[Config, list[str]]:
    """Load quietly; the caller prints warnings itself, exactly once."""
    warnings: list[str] = []
    logger = logging.getLogger("ocproxy.config")
    # The loader also logs each warning; with no handler configured Python's
    # last-resort handler would print them a second time.
    was_disabled, logger.disabled = logger.disabled, True
    try:
        return load_config(path, os.environ, warnings=warnings, **overrides), warnings
    finally:
        logger.disabled = was_disabled
        _show_warnings(warnings)


# -- commands ----------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    # Go always wrote the default path; honouring OCPROXY_CONFIG lets `init`
    # and `serve` agree on one file.
    target = os.environ.get("OCPROXY_CONFIG")
    target = os.path.abspath(expand_user(target, os.environ)) if target else primary_config_path(os.environ)
    if os.path.exists(target) and not args.force:
        _err(f"config already exists at {target} (use --force to overwrite it)")
        return EXIT_ERROR
    try:
        write_private_config(target, default_template())
    except OSError as exc:
        _err(f"cannot write {target}: {exc}")
        return EXIT_ERROR
    print(f"Created default config at {target}")
    print("Edit the file and add your OpenCode Go API key.")
    return EXIT_OK


def _print_summary(config: Config) -> None:
    print("Configuration is valid!")
    print(f"  Host: {config.host}")
    print(f"  Port: {config.port}")
    if len(config.api_keys) > 1:
        print(f"  API Keys: {len(config.api_keys)} keys (round-robin)")
    else:
        print(f"  API Key: {mask_key(config.key_pool[0])}")
    print(f"  Base URL: {config.opencode_go.base_url}")
    print(f"  Models configured: {len(config.models)}")
    print(f"  Fallback chains: {len(config.fallbacks)}")


def cmd_validate(args: argparse.Namespace) -> int:
    from ocproxy import validate_command

    return validate_command.run(args.config, args.online, _print_summary)


def _program() -> list[str]:
    """How systemd should start *this* install of ocproxy.

    Prefer the script that is running now, then the console script next to
    this interpreter (a venv), then one on PATH; else ``python -m ocproxy``.
    """
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "ocproxy" and os.path.isfile(argv0):
        return [os.path.abspath(argv0)]
    beside = os.path.join(os.path.dirname(sys.executable), "ocproxy")
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return [beside]
    found = shutil.which("ocproxy")
    if found:
        return [os.path.abspath(found)]
    return [sys.executable, "-m", "ocproxy"]


def _systemd_quote(word: str) -> str:
    """systemd splits ExecStart like a shell; quote only when needed."""
    return word if word and not any(c in word for c in " \t\"'\\") else json.dumps(word)


def systemd_unit(config_path: str | None, port: int | None) -> str:
    from ocproxy import daemon

    command = [*_program(), "serve"]
    if config_path:
        command += ["--config", os.path.abspath(expand_user(config_path, os.environ))]
    if port is not None:
        command += ["--port", str(port)]
    exec_start = " ".join(_systemd_quote(w) for w in command)
    return (
        "[Unit]\n"
        "Description=ocproxy - Claude Code to OpenCode Go/Zen proxy\n"
        "After=network-online.target\n"
        "Wants=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"ExecStart={exec_start}\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        f"TimeoutStopSec={daemon.GRACE_SECONDS + daemon.STOP_MARGIN_SECONDS:.0f}\n"
        f"LimitNOFILE={LIMIT_NOFILE}\n"
        "Environment=PYTHONUNBUFFERED=1\n"
        "EnvironmentFile=-%h/.config/ocproxy/env\n"
        "\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def cmd_systemd_unit(args: argparse.Namespace) -> int:
    sys.stdout.write(systemd_unit(args.config, args.port))
    print(INSTALL_HINT, file=sys.stderr)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from ocproxy import daemon

    path = resolve_config_path(args.config, os.environ)
    if args.config and path:
        # As in Go: --config names the file for the whole process, so any
        # later lookup (hot reload, the WSGI module) finds the same one.
        os.environ["OCPROXY_CONFIG"] = path
    try:
        config, _ = _load(path, cli_host=args.host, cli_port=args.port)
    except ConfigError as exc:
        _print_problems("failed to load config", exc)
        return EXIT_BAD_CONFIG
    if args.background and not args.daemonize:
        # The child re-runs `serve` in the foreground with absolute paths, so
        # its different working directory cannot change which file it reads.
        child = ["serve"]
        if path:
            child += ["--config", path]
        if args.port is not None:
            child += ["--port", str(args.port)]
        if args.host:
            child += ["--host", args.host]
        return daemon.start_background(child, config.port)
    # Imported here, not at the top: the HTTP stack (werkzeug, requests, the
    # token encoder) doubles the start-up time of every other command.
    from ocproxy import tokens

    # The encoder before the HTTP stack: loading it frees ~20 MB of Python
    # temporaries, which the imports then reuse instead of growing the heap.
    tokens.preload()
    from ocproxy import server

    extra = {"daemon_child": True} if args.daemonize else {}
    return server.run(config, config_path=path, cli_host=args.host, cli_port=args.port, **extra)


def _instance_port(args: argparse.Namespace) -> int | None:
    """The port naming the instance ``stop``/``status`` address: ``--port``,
    else the config's (the same lookup as ``serve``)."""
    if args.port is not None:
        return args.port
    try:
        config, _ = _load(resolve_config_path(args.config, os.environ))
    except ConfigError as exc:
        _print_problems("failed to load config (give --port to name the instance)", exc)
        return None
    return config.port


def cmd_stop(args: argparse.Namespace) -> int:
    from ocproxy import daemon

    port = _instance_port(args)
    return EXIT_BAD_CONFIG if port is None else daemon.stop(port)


def cmd_status(args: argparse.Namespace) -> int:
    from ocproxy import daemon

    port = _instance_port(args)
    return EXIT_BAD_CONFIG if port is None else daemon.status(port)


# -- parser ------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from ocproxy import claude_env, models_cmd

    parser = argparse.ArgumentParser(prog="ocproxy", description="Claude Code to OpenCode Go/Zen proxy")
    parser.add_argument("--version", action="version", version=f"ocproxy version {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def config_opt(p: argparse.ArgumentParser) -> None:
        p.add_argument("-c", "--config", metavar="PATH", help="config file (default: see README)")

    p = sub.add_parser("serve", help="run the proxy (foreground unless -b)")
    config_opt(p)
    p.add_argument("--host", metavar="H", help="listen address (overrides the config)")
    p.add_argument("-p", "--port", type=_port, metavar="N", help="listen port (overrides the config)")
    p.add_argument("-b", "--background", action="store_true", help="run detached; see `ocproxy stop`")
    p.add_argument("--_daemonize", dest="daemonize", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_serve)

    for name, func, text in (("stop", cmd_stop, "stop the running proxy"),
                             ("status", cmd_status, "is the proxy running?")):
        p = sub.add_parser(name, help=f"{text} (the instance on --port, else the config's port)")
        config_opt(p)
        p.add_argument("-p", "--port", type=_port, metavar="N", help="the instance's port")
        p.set_defaults(func=func)

    p = sub.add_parser("init", help="write the default config file")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("validate", help="check a config file and list every problem")
    config_opt(p)
    p.add_argument("--online", action="store_true", help="also check each provider's key against its model list")
    p.set_defaults(func=cmd_validate)

    models_cmd.add_parser(sub)

    p = sub.add_parser("env", help="print the environment for Claude Code (eval \"$(ocproxy env)\")")
    config_opt(p)
    p.set_defaults(func=lambda args: claude_env.cmd_env(args.config))
    # `ocproxy claude ARGS...` hands every argument to claude untouched (see main)
    sub.add_parser("claude", help="start the proxy if needed and run Claude Code through it", add_help=False)

    from ocproxy.usage.commands import add_parsers as add_usage_parsers

    add_usage_parsers(sub, config_opt)

    p = sub.add_parser("systemd-unit", help="print a systemd user unit for this install")
    config_opt(p)
    p.add_argument("-p", "--port", type=_port, metavar="N", help="port for the unit's serve command")
    p.set_defaults(func=cmd_systemd_unit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["claude"]:  # every later argument is claude's own, parsed by nobody here
        from ocproxy import claude_env

        args = argparse.Namespace(func=lambda _: claude_env.cmd_claude(argv[1:]))
    else:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, usage errors
            return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_OK
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ocproxy models | head`: the reader left, not an error to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except OSError as exc:  # e.g. an unwritable stdout or config dir
        _err(str(exc))
        return EXIT_ERROR


__all__ = ["main", "build_parser", "mask_key", "systemd_unit"]
