"""What the command line shows: one console, logging, progress on long steps.

Commands print their results (tables, file names) on :data:`console`, which ``--quiet``
silences. Messages of the library go through :mod:`logging` (logger ``"vekst"``): the
command line shows them at INFO (``--verbose``: DEBUG; ``--quiet``: warnings and errors
only), and a library user decides for themselves, e.g.
``logging.getLogger("vekst").setLevel(logging.WARNING)``.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import time
from collections.abc import Iterator

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

__all__ = [
    "DEFAULT_PROJECTION_DRAWS",
    "FIT_DRAWS",
    "FIT_TARGET_ACCEPT",
    "FIT_TUNE",
    "Verbosity", "configure", "console", "step"]

#: Posterior draws carried through a projection by ``vekst demo`` and ``vekst project``
#: alike: enough for stable 80 % bands, few enough to keep single-year ages (< 2 GiB).
DEFAULT_PROJECTION_DRAWS = 250

#: Sampler settings of the national fit of ``vekst fit`` and ``vekst demo`` (4 chains).
#: With municipal attractiveness partially non-centred, target acceptance 0.95 (about 31
#: leapfrog steps per draw, half those of 0.99) passed the gate for 10 of 10 seeds of the
#: default spec with no divergence, and the demo's housing spec with the default seed with
#: none (before that change 0.95 gave one divergence in each: 0.99 was needed then).
#: 2,000 draws keep the slowest parameter's bulk ESS above 900 (gate: 400).
FIT_DRAWS = 2000
FIT_TUNE = 1500
FIT_TARGET_ACCEPT = 0.95

#: The console of every command (results and tables); ``--quiet`` silences it.
console = Console()
#: Where log records and progress go (standard error, so results can be piped).
err_console = Console(stderr=True)

logger = logging.getLogger("vekst")


class Verbosity(enum.IntEnum):
    """How much the command line says."""

    quiet = logging.WARNING
    normal = logging.INFO
    verbose = logging.DEBUG


def configure(verbosity: Verbosity = Verbosity.normal) -> None:
    """Set up the console and the ``vekst`` logger for one command-line run.

    Parameters
    ----------
    verbosity
        ``quiet`` hides results, progress and INFO messages (warnings and errors stay);
        ``verbose`` adds DEBUG messages.
    """
    console.quiet = verbosity is Verbosity.quiet
    err_console.quiet = False
    logger.setLevel(int(verbosity))
    for handler in list(logger.handlers):
        if getattr(handler, "_vekst_cli", False):
            logger.removeHandler(handler)
    handler = RichHandler(console=err_console, show_time=False, show_path=False)
    handler._vekst_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False


@contextlib.contextmanager
def step(description: str) -> Iterator[None]:
    """Show a spinner with the elapsed time while a long step runs (not when quiet).

    Parameters
    ----------
    description
        What is being done ("projecting 250 draws to 2040").
    """
    logger.debug("start: %s", description)
    if console.quiet:
        yield
        return
    if not err_console.is_terminal:
        # Redirected to a file or a CI log, a transient spinner left only a blank line: say
        # what was done and how long it took instead.
        start = time.perf_counter()
        yield
        err_console.print(f"{description}: {time.perf_counter() - start:.0f} s")
        logger.debug("done: %s", description)
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        progress.add_task(description, total=None)
        yield
    logger.debug("done: %s", description)
