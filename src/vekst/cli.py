"""The ``vekst`` command line.

Each group of commands lives in its own module under :mod:`vekst.commands` and exposes
``register(app)``; this module only assembles them and adds the options every command
shares (``--version``, ``-h``, ``--quiet``, ``--verbose``), so the CLI stays a thin layer
over typed library functions.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Annotated

import typer

# Users cannot act on these: pip's PyTensor has no BLAS (nutpie compiles with numba and does
# not need it), and ArviZ announces its 1.x refactor on import.
warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")
warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")

app = typer.Typer(
    name="vekst",
    help="Bayesian models of why places grow or shrink, and population forecasts with bands.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: Modules under vekst.commands that add commands to the app, in help order.
COMMAND_MODULES: tuple[str, ...] = (
    "info",
    "demo",
    "fit",
    "project",
    "simulate",
    "backtest",
    "fetch",
    "report",
)


def _version(value: bool) -> None:
    if value:
        from vekst import __version__

        typer.echo(f"vekst {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only warnings and errors.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also print debugging messages.")
    ] = False,
) -> None:
    """Bayesian models of why places grow or shrink, and population forecasts with bands."""
    from vekst.commands.ui import Verbosity, configure

    if quiet and verbose:
        raise typer.BadParameter("--quiet and --verbose exclude each other; give one.")
    configure(Verbosity.quiet if quiet else Verbosity.verbose if verbose else Verbosity.normal)


for _module_name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"vekst.commands.{_module_name}")
    except ModuleNotFoundError as error:
        if error.name != f"vekst.commands.{_module_name}":
            raise
        continue
    _module.register(app)


def main() -> None:  # pragma: no cover - entry point
    """Run the command line."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
