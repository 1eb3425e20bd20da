"""``mindfu serve``: the HTTP facade on uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import sys

from mindfu_core.errors import ConfigurationError

log = logging.getLogger("mindfu")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(*, host: str | None, port: int | None, log_level: str | None) -> int:
    import uvicorn

    from mindfu_adapters.container import build_container, preflight
    from mindfu_adapters.settings import Settings
    from mindfu_http.app import create_app

    settings = Settings()
    level = (log_level or settings.log_level).upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    bind_host = host or settings.http.host
    bind_port = settings.http.port if port is None else port
    try:
        keys = settings.all_api_keys()
    except OSError as exc:
        print(f"mindfu: cannot read the API keys file: {exc}", file=sys.stderr)
        return 2
    if not keys and not is_loopback(bind_host):
        log.warning(
            "binding to %s with no API keys: anyone who can reach this address can use MindFu. "
            "Set MINDFU_API_KEYS or MINDFU_API_KEYS_FILE.",
            bind_host,
        )
    try:
        preflight(settings)
    except ConfigurationError as exc:
        print(f"mindfu: {exc.message}", file=sys.stderr)
        return 2
    app = create_app(build_container(settings))
    config = uvicorn.Config(app, host=bind_host, port=bind_port, log_level=level.lower(), access_log=False)
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1
