"""The `enpact` command line: one subcommand per pipeline step.

Each module in this package that defines `register(subparsers)` contributes one subcommand; it parses
arguments and calls library functions, nothing more. `build_parser()` is also used by the Nextflow
contract test to check that every module's command line is accepted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from pathlib import Path
from types import ModuleType

from enpact import __version__, logsummary
from enpact.errors import EnpactError, path_error

log = logging.getLogger("enpact")


def _command_modules() -> list[ModuleType]:
    """Import every subcommand module of this package, ordered by its ORDER attribute."""
    modules = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            modules.append(module)
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


class _VersionOf(argparse.Action):
    """`--version-of NAME`: print one software version (enpact, python, torch, ...) and exit."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.exit(*_version_of(str(values)))


def _version_of(name: str) -> tuple[int, str | None]:
    """(exit status, message) of `enpact --version-of NAME`."""
    from enpact.versions import software_versions

    versions = software_versions(name)
    if name not in versions:
        return 1, f"enpact: {name} is not installed\n"
    print(versions[name])
    return 0, None


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="enpact",
        description="EnPACT: sequence-model predictions -> EnPACT models -> PredictDB databases -> TWAS.",
    )
    parser.add_argument("--version", action="version", version=f"enpact {__version__}")
    parser.add_argument("--version-of", action=_VersionOf, metavar="NAME",
                        help="print the version of enpact, python or a library as this enpact sees it, and exit "
                        "(the Nextflow modules report software versions with it)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        module.register(subparsers)
    return parser


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Log to stderr with a short prefix; progress bars also go to stderr (only when it is a terminal).

    A repeated warning (same format string, e.g. one per chunk) is written once; `enpact.logsummary.flush()`
    (and the exit hook) adds `N more like: ...`. Floats printed with a bare %s/%r are rounded to 4 significant
    digits. See enpact.logsummary."""
    from enpact.logsummary import install

    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="enpact %(levelname)s: %(message)s", stream=sys.stderr, force=True)
    install(logging.getLogger().handlers[0])


def _one_line(err: BaseException) -> str:
    """An error message on one line (a message with line breaks from a library is joined)."""
    return " ".join(str(err).split("\n")).strip()


def _output_of(args: argparse.Namespace) -> Path:
    """The output a command was writing: its --outdir or --out, else the working folder."""
    for name in ("outdir", "out"):
        value = getattr(args, name, None)
        if value:
            return Path(str(value))
    return Path.cwd()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `enpact` console script; user errors become one line and exit status 1."""
    given = sys.argv[1:] if argv is None else argv
    if len(given) == 2 and given[0] == "--version-of":
        # every Nextflow task asks this two or three times: answered before the subcommands (and the libraries
        # they import) are loaded
        status, message = _version_of(given[1])
        if message:
            print(message, end="", file=sys.stderr)
        return status
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(getattr(args, "verbose", False), getattr(args, "quiet", False))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        try:
            result = args.func(args)
        finally:
            logsummary.flush()   # repeated warnings summed up before the last line (a one-line error, if any)
    except EnpactError as err:
        print(f"enpact {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except OSError as err:
        # a read-only output folder, a file where a folder is expected, a full disk...: about a path the user
        # chose, so one line naming it; any other OSError is a bug and keeps its traceback
        # a write into an open file (a full disk) names no path: the command's output is the one it was writing
        message = path_error(err) or path_error(err, path=_output_of(args))
        if message is None:
            raise
        log.debug("%s", message, exc_info=True)
        print(f"enpact {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"enpact {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)
