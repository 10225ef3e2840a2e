"""The config file ``ocproxy init`` writes: readable by its owner alone.

It is where users put their OpenCode key (and client keys), so the file is
0600 and a directory made for it 0700, whatever the umask says.
"""

from __future__ import annotations

import json
import os

from ocproxy.config.types import DEFAULT_MAX_CONNECTIONS

#: The descriptor limit the systemd unit asks for: a client and an upstream
#: socket for each of the default max_connections, with room to spare.
LIMIT_NOFILE = 4096
assert LIMIT_NOFILE >= 2 * DEFAULT_MAX_CONNECTIONS + 64


def write_private_config(path: str, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` with mode 0600; a missing
    directory is made 0700. An existing file is rewritten in place and
    its mode narrowed to 0600 too."""
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)  # makedirs' mode is filtered by the umask
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)  # before the key is written, for a file that existed
        json.dump(data, fh, indent=2)
        fh.write("\n")
