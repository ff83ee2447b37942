"""The errors a user's input can cause, and the exit code of each.

Every error that bad input, a bad file or a failed fit can raise is a :class:`VekstError`
subclass. Its message is one sentence that names the culprit (file, municipality, year,
key or option) and says what to do; the command line prints that message (no stack
trace unless ``vekst --debug``) and exits with the class's :attr:`VekstError.exit_code`.

Exit codes of the ``vekst`` command
-----------------------------------
====  =====================================================================
0     success
1     usage: an option value is invalid (``--draws 0``, ``--sampler foo``)
2     input: a panel, spec, scenario, fit or other input file is invalid
3     the fit failed the convergence gate (see ``--allow-unconverged``)
4     output: the ``--out`` target cannot be written, or writing failed
5     a data source (SSB's API) is unreachable or answered with an error
130   interrupted (Ctrl-C); outputs already in place are left as they were
====  =====================================================================

Category classes subclass :class:`ValueError` (or :class:`RuntimeError`) as well, so
code written against the built-in types keeps working.
"""

from __future__ import annotations

__all__ = [
    "EXIT_CODES",
    "EXIT_INPUT",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_CONVERGED",
    "EXIT_OK",
    "EXIT_OUTPUT",
    "EXIT_SOURCE",
    "EXIT_USAGE",
    "FitError",
    "InputError",
    "NotConvergedError",
    "OutputError",
    "PanelError",
    "ScenarioError",
    "SourceError",
    "SpecError",
    "UsageError",
    "VekstError",
]

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_INPUT = 2
EXIT_NOT_CONVERGED = 3
EXIT_OUTPUT = 4
EXIT_SOURCE = 5
EXIT_INTERRUPTED = 130

#: Exit code -> meaning, as documented for users (README, ``vekst --help``).
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_USAGE: "invalid option value",
    EXIT_INPUT: "invalid input (panel, spec, scenario, fit or other input file)",
    EXIT_NOT_CONVERGED: "the fit failed the convergence gate",
    EXIT_OUTPUT: "the output cannot be written",
    EXIT_SOURCE: "a data source (SSB) is unreachable or answered with an error",
    EXIT_INTERRUPTED: "interrupted; earlier outputs are intact",
}


class VekstError(Exception):
    """Base of every error a user's input can cause.

    Attributes
    ----------
    exit_code
        Exit status of the ``vekst`` command when this error ends it.
    """

    exit_code: int = EXIT_INPUT


class UsageError(VekstError, ValueError):
    """An argument or option value is invalid (``draws=0``, an unknown sampler)."""

    exit_code = EXIT_USAGE


class InputError(VekstError, ValueError):
    """An input (data, file, argument object) is invalid."""

    exit_code = EXIT_INPUT


class PanelError(InputError):
    """A panel (or data derived from it) is invalid or implausible."""


class SpecError(InputError):
    """A model spec is invalid; the message lists every problem found.

    Parameters
    ----------
    source
        The spec's file name (or a label), or the whole message when ``problems`` is
        ``None``.
    problems
        Every problem found, reported together so a file is fixed in one pass.
    """

    def __init__(self, source: str, problems: list[str] | None = None):
        self.source = source
        self.problems = list(problems) if problems is not None else []
        if problems is None:
            super().__init__(source)
            return
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s) in the model spec:\n{lines}")

    def __reduce__(self):
        # Keep the two-argument form picklable (multiprocessing sends errors back).
        return (type(self), (self.source, self.problems or None))


class ScenarioError(InputError):
    """A scenario is invalid; the message names the file, row or field and what to do."""


class FitError(InputError):
    """A saved fit cannot be used (missing, truncated, or made on other data or spec)."""


class NotConvergedError(VekstError, RuntimeError):
    """A fit failed the convergence gate and may not be used for projection."""

    exit_code = EXIT_NOT_CONVERGED


class OutputError(VekstError, RuntimeError):
    """An output file or folder cannot be written where the user asked."""

    exit_code = EXIT_OUTPUT


class SourceError(VekstError, RuntimeError):
    """A data source (SSB's API, a downloaded table) is unreachable or unusable."""

    exit_code = EXIT_SOURCE
