"""ocproxy: lets Claude Code talk to OpenCode Go / Zen models."""

__version__ = "0.1.0"
