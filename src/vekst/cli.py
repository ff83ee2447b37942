"""The ``vekst`` command line.

Each group of commands lives in its own module under :mod:`vekst.commands` and exposes
``register(app)``; this module only assembles them and adds the options every command
shares (``--version``, ``-h``, ``--quiet``, ``--verbose``), so the CLI stays a thin layer
over typed library functions.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import warnings
from typing import Annotated

import typer
from typer._click.exceptions import NoArgsIsHelpError
from typer._click.exceptions import UsageError as ClickUsageError
from typer.core import TyperGroup

from vekst.errors import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OUTPUT, EXIT_USAGE, VekstError

# Users cannot act on these: pip's PyTensor has no BLAS (nutpie compiles with numba and does
# not need it), and ArviZ announces its 1.x refactor on import.
warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")
warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")


class VekstGroup(TyperGroup):
    """The command group with the error boundary of every ``vekst`` command.

    An error a user's input can cause (:class:`vekst.errors.VekstError`, a missing or
    unreadable file) ends the command with a one-line ``error: ...`` message on stderr
    and the exit code documented in :mod:`vekst.errors`; ``vekst --debug`` (or
    ``VEKST_DEBUG=1``) shows the stack trace instead. Bad option values exit with 1.
    """

    def get_command(self, ctx, cmd_name):
        """A command whose ``--help`` is click's plain layout.

        Rich's option table has six columns; at 80 it cut long option names and defaults
        (``--projection-dra…``, ``bayes,ols,naive…``), so a user could not read or copy
        them. The plain layout wraps descriptions under whole names. The command list of
        ``vekst --help`` keeps Rich, which wraps summaries instead of cutting them.
        """
        command = super().get_command(ctx, cmd_name)
        if command is not None and hasattr(command, "rich_markup_mode"):
            command.rich_markup_mode = None
        return command

    def make_context(self, *args, **kwargs):
        """Parse the command line; usage errors exit with code 1."""
        with _usage_exit_code():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        """Run the command inside the error boundary described above."""
        with _usage_exit_code():
            try:
                return super().invoke(ctx)
            except KeyboardInterrupt:
                typer.echo(
                    "interrupted: nothing half-written was kept; outputs already in place "
                    "are intact.",
                    err=True,
                )
                raise typer.Exit(EXIT_INTERRUPTED) from None
            except (VekstError, OSError) as error:
                if _debug(ctx):
                    raise
                typer.echo(f"error: {_one_line(error)}", err=True)
                raise typer.Exit(_exit_code(error)) from None


@contextlib.contextmanager
def _usage_exit_code():
    """Give option errors exit code 1 (the vendored click's default is 2, our data code)."""
    try:
        yield
    except ClickUsageError as error:
        if not isinstance(error, NoArgsIsHelpError):
            error.exit_code = EXIT_USAGE
        raise


def _debug(ctx) -> bool:
    root = ctx.find_root()
    flag = bool((root.obj or {}).get("debug")) if isinstance(root.obj, dict) else False
    return flag or os.environ.get("VEKST_DEBUG", "") not in ("", "0")


def _exit_code(error: BaseException) -> int:
    if isinstance(error, VekstError):
        return error.exit_code
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return EXIT_OUTPUT
    return EXIT_INPUT


def _one_line(error: BaseException) -> str:
    """The error's message; an OSError gets its file name and what to check."""
    if isinstance(error, OSError) and not isinstance(error, VekstError) and error.strerror:
        name = f" {error.filename}" if error.filename else ""
        reason = error.strerror or str(error)
        return f"cannot use{name}: {reason}; check the path and its permissions."
    return str(error) or type(error).__name__


app = typer.Typer(
    cls=VekstGroup,
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
    "compare",
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
    ctx: typer.Context,
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
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full stack trace when a command fails.")
    ] = False,
) -> None:
    """Bayesian models of why places grow or shrink, and population forecasts with bands.

    Exit codes: 0 ok, 1 invalid option value, 2 invalid input (panel, spec, scenario, fit
    file), 3 fit not converged, 4 output cannot be written, 5 SSB unreachable, 130
    interrupted.
    """
    from vekst.commands.ui import Verbosity, configure

    ctx.obj = {"debug": debug}
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
