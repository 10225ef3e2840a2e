"""The ``usage`` and ``statusline`` commands of the ``ocproxy`` CLI."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys

from ocproxy.usage import report
from ocproxy.usage.ledger import connect
from ocproxy.usage.statusline import line_for, session_of


def ledger_path(config_arg: str | None) -> str:
    """Where the config puts the ledger, read without validating the whole
    config: the status line runs on every prompt and must stay fast."""
    from ocproxy.config import resolve_config_path
    from ocproxy.config.load import beside_config

    path = resolve_config_path(config_arg, os.environ)
    usage = {}
    if path and os.path.isfile(path):
        try:
            with open(path, encoding="utf-8-sig") as fh:
                data = json.load(fh)
            usage = data.get("usage") or {} if isinstance(data, dict) else {}
        except (OSError, ValueError):
            usage = {}
    configured = usage.get("database_path") if isinstance(usage, dict) else None
    return beside_config(configured if isinstance(configured, str) and configured else "usage.db", path, os.environ)


def cmd_usage(args: argparse.Namespace) -> int:
    try:
        since = report.parse_since(args.since)
    except ValueError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    path = ledger_path(args.config)
    if not os.path.exists(path):
        print(f"Error: no usage ledger at {path} yet (it is written by a running proxy)", file=sys.stderr)
        return 1
    try:
        conn = connect(path, readonly=True)
        overall, groups = report.totals(conn, since, args.by)
    except sqlite3.Error as exc:
        print(f"Error: cannot read the usage ledger {path}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(report.render_json(overall, groups, args.by, since))
    elif args.csv:
        print(report.render_csv(overall, groups, args.by))
    else:
        print(report.render_table(overall, groups, args.by))
    return 0


def cmd_statusline(args: argparse.Namespace) -> int:
    session = session_of(sys.stdin.read())
    path = ledger_path(args.config)
    try:
        conn = connect(path, readonly=True)
        print(line_for(conn, session))
    except sqlite3.Error:
        print("ocproxy: no usage yet")
    return 0


def add_parsers(sub, config_opt) -> None:
    p = sub.add_parser("usage", help="token and cost totals from the usage ledger")
    config_opt(p)
    p.add_argument("--by", choices=sorted(report.GROUPS), help="one row per day, model, session or client")
    p.add_argument("--since", default="24h", metavar="WHEN", help="24h, 7d, 30m, 2w or a date (default 24h)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON")
    fmt.add_argument("--csv", action="store_true", help="print CSV")
    p.set_defaults(func=cmd_usage)

    p = sub.add_parser("statusline", help="one status line for Claude Code's statusLine command (JSON on stdin)")
    config_opt(p)
    p.set_defaults(func=cmd_statusline)
