"""What requests used: the ledger (one SQLite row per request), its reports,
the OpenCode Go quota poller, the Claude Code status line and the /ui page."""
