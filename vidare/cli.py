"""The ``vidare`` command line (SPEC section 7).

Every subcommand takes ``--config``, ``--data-dir`` and repeatable ``--set section.key=value``.
Errors exit 2 with one clear line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from vidare.config import Config, ConfigError, load_config

__all__ = ["UsageError", "build_parser", "main"]

Handler = Callable[[argparse.Namespace, Config], int]


class UsageError(Exception):
    """A user-facing error from a subcommand: printed as one line, exit status 2."""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, help="config file (TOML)")
    p.add_argument("--data-dir", type=Path, default=None, help="directory holding var/")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config key (repeatable)",
    )


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line and exit 2, like every other error of ours.
        self.exit(2, f"vidare: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from vidare import commands_admin, commands_media, commands_policy, commands_serve

    parser = _Parser(prog="vidare", description="Vidare call-handling server")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in (commands_serve, commands_media, commands_policy, commands_admin):
        module.add_commands(sub, _common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides, args.data_dir)
        handler: Handler = args.handler
        return handler(args, config)
    except (ConfigError, UsageError) as e:
        print(f"vidare: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
