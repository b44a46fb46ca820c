"""The ``vreid`` command line.

Commands are grouped in ``vreid_bench.cli_*`` modules, each with a ``register(app)`` function; their bodies
import the heavy packages (torch, builders, models) only when they run, so ``vreid --help`` stays fast.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from vreid_bench import __version__
from vreid_bench.errors import VreidError, user_message

app = typer.Typer(
    name="vreid",
    help="Video person re-identification where it is hardest: build sports/dance datasets, run CG-CLIP and "
    "baselines under one protocol, compare them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        console.print(f"vreid {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                           help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error."),
) -> None:
    _state["debug"] = debug


def _register_all() -> None:
    from vreid_bench import cli_build, cli_caption, cli_compare, cli_data, cli_review, cli_run, cli_study

    for module in (cli_data, cli_build, cli_caption, cli_review, cli_run, cli_compare, cli_study):
        module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: a user error prints one line and exits 2; ``--debug`` shows the traceback."""
    _register_all()
    args = sys.argv[1:] if argv is None else argv
    _state["debug"] = "--debug" in args
    try:
        code = app(args=args, standalone_mode=False)
    except VreidError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[bold red]error:[/] {escape(user_message(exc))}", highlight=False, soft_wrap=True)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except Exception as exc:  # usage errors (typer's click): show them the way click does
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            return int(exc.exit_code)
        raise
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
