"""The ``vekst`` command line.

Each group of commands lives in its own module under :mod:`vekst.commands` and exposes
``register(app)``; this module only assembles them, so the CLI stays a thin layer over
typed library functions.
"""

from __future__ import annotations

import importlib
import warnings

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
)

#: Modules under vekst.commands that add commands to the app, in help order.
COMMAND_MODULES: tuple[str, ...] = (
    "info",
    "demo",
    "fit",
    "compare",
    "project",
    "simulate",
    "backtest",
    "fetch",
    "report",
)

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
