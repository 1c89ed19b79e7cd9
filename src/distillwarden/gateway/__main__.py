"""``python -m distillwarden.gateway``: the lean gateway process.

``distillwarden serve`` validates the config, migrates the store and then replaces itself
with this entry point, so that the serving process imports only what the hot path needs
(not every part of the CLI): less memory per replica.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m distillwarden.gateway")
    parser.add_argument("--config", default=None, help="YAML config file")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--body-timeout", type=float, default=30.0)
    parser.add_argument(
        "--no-migrate", action="store_true", help="the store is already at the latest schema"
    )
    args = parser.parse_args(argv)

    from ..config import ConfigError, load_settings
    from .server import run_server

    try:
        settings = load_settings(args.config, host=args.host, port=args.port)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run_server(settings, body_timeout_s=args.body_timeout, migrate=not args.no_migrate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
