"""``ocproxy.wsgi:application`` for WSGI hosts (gunicorn, waitress, mod_wsgi).

Built from the same configuration lookup as ``ocproxy serve``. The streaming
model keeps all socket writes in the host's request thread, so heartbeats and
streaming work the same under any PEP 3333 host; give the host threads
(e.g. ``gunicorn -k gthread --threads 32``) because every open stream holds one.
"""

from __future__ import annotations

import atexit

from ocproxy.app import create_app
from ocproxy.config import load_config, resolve_config_path
from ocproxy.logs import setup_logging

_config = load_config(resolve_config_path(None))
setup_logging(_config.log_level)
application = create_app(_config)
atexit.register(application.close)
