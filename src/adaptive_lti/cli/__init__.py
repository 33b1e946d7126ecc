"""The ``adaptive-lti`` command line, for course designers, administrators and operators.

Each module in this package adds its own subcommands through ``register(subparsers)`` (designs,
platforms and keys, grades, audit and learners, the server and the database, the demo);
``main`` builds the parser and turns the project's errors into a clear message and exit code 1
(2 for usage errors, as argparse does).
May import: every layer (it is the outermost one); the command line is the operator's, so it
acts on any tenant given ``--platform ID``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from adaptive_lti import __version__
from adaptive_lti.cli import admin, audit, demo, design, designs, grades, server, simulate, status
from adaptive_lti.core.errors import AdaptiveLtiError

COMMAND_MODULES = [server, demo, design, designs, admin, simulate, grades, status, audit]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adaptive-lti",
        description="An LTI 1.3 tool that routes each learner along a YAML learning design.",
    )
    parser.add_argument("--version", action="version", version=f"adaptive-lti {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def _key_ids_as_values(argv: list[str]) -> list[str]:
    """Tool key ids are RFC 7638 thumbprints in base64url and may begin with "-", which argparse
    would read as an unknown option: after ``keys retire`` such a word is the KID."""
    for index in range(len(argv) - 1):
        if argv[index : index + 2] == ["keys", "retire"]:
            rest = argv[index + 2 :]
            options = [word for word in rest if word in {"--json", "-h", "--help"}]
            values = [word for word in rest if word not in options and word != "--"]
            return [*argv[: index + 2], *options, "--", *values]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_key_ids_as_values(list(sys.argv[1:] if argv is None else argv)))
    try:
        code: int = args.handler(args)
    except AdaptiveLtiError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ValidationError as error:
        # Settings from the environment that do not validate (e.g. a bad ADAPTIVE_LTI_* value).
        print(f"error: invalid configuration:\n{error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``adaptive-lti check x.yaml | head``): stop quietly, and point
        # stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
