"""The command line meets bad input: one line naming the culprit, a documented exit code,
no traceback, and nothing fitted or projected."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from fixtures.bad_input import (  # noqa: F401 - pytest finds fixtures by name
    CODES,
    JOB_HEADER,
    Context,
    base_panel_fixture,
    ctx_fixture,
    panel_file_fixture,
    spec_dict_fixture,
    write_text,
)
from vekst.cli import app
from vekst.data.panel import PanelValidationError
from vekst.errors import (
    EXIT_INPUT,
    EXIT_OUTPUT,
    EXIT_USAGE,
    UsageError,
)

# --------------------------------------------------------------------------------------
# The command line: one line, an exit code, no traceback, nothing computed
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CliCase:
    id: str
    args: Callable[[Context], list[str]]
    exit_code: int
    names: tuple[str, ...]


def _fake_fit(ctx: Context) -> str:
    path = ctx.tmp / "fit.nc"
    xr.Dataset({"x": ("a", np.arange(3.0))}).to_netcdf(path, engine="h5netcdf")
    return str(path)


def _truncated_fit(ctx: Context) -> str:
    path = Path(_fake_fit(ctx))
    path.write_bytes(path.read_bytes()[:100])
    return str(path)


def _user_folder(ctx: Context) -> str:
    folder = ctx.tmp / "mine"
    folder.mkdir()
    (folder / "thesis.docx").write_text("months of work")
    return str(folder)


def _project(*extra: str, fit=_fake_fit, out=lambda c: str(c.tmp / "out")):
    def args(ctx: Context) -> list[str]:
        return ["project", "--fit", fit(ctx), "--panel", str(ctx.panel_file),
                "--out", out(ctx), "--end-year", "2020", *extra]

    return args


def _fit(*extra: str, out=lambda c: str(c.tmp / "fit.nc")):
    return lambda ctx: ["fit", "--out", out(ctx), *[e.format(tmp=ctx.tmp) for e in extra]]


CLI_CASES = [
    CliCase("fit-draws-0", _fit("--draws", "0"), EXIT_USAGE, ("--draws",)),
    CliCase("fit-chains-0", _fit("--chains", "0"), EXIT_USAGE, ("--chains",)),
    CliCase("fit-tune-negative", _fit("--tune", "-5"), EXIT_USAGE, ("--tune",)),
    CliCase("fit-sampler-foo", _fit("--sampler", "foo"), EXIT_USAGE, ("foo", "nutpie")),
    CliCase("fit-out-is-folder", _fit(out=lambda c: str(c.tmp)), EXIT_OUTPUT, ("folder",)),
    CliCase("fit-spec-missing", _fit("--spec", "{tmp}/nope.toml"), EXIT_INPUT, ("nope.toml",)),
    CliCase("fit-panel-missing", _fit("--panel", "{tmp}/none.nc"), EXIT_INPUT, ("none.nc",)),
    CliCase("project-fit-missing", _project(fit=lambda c: str(c.tmp / "gone.nc")), EXIT_INPUT,
            ("gone.nc",)),
    CliCase("project-fit-truncated", _project(fit=_truncated_fit), EXIT_INPUT, ("fit.nc",)),
    CliCase("project-draws-0", _project("--draws", "0"), EXIT_USAGE, ("--draws",)),
    CliCase("project-detail-foo", _project("--detail", "foo"), EXIT_USAGE, ("--detail", "foo")),
    CliCase("project-out-is-file",
            _project(out=lambda c: str(write_text("out.txt", "x")(c))), EXIT_OUTPUT,
            ("out.txt",)),
    CliCase("project-out-holds-user-files", _project(out=_user_folder), EXIT_OUTPUT,
            ("thesis.docx",)),
    CliCase("project-bad-scenario",
            lambda c: [*_project()(c), "--scenario",
                       str(write_text("jobs.csv", JOB_HEADER + "3001,2020,2,5%\n")(c))],
            EXIT_INPUT, ("jobs.csv", "line 2")),
    CliCase("info-panel-not-netcdf",
            lambda c: ["info", "--panel", str(write_text("x.nc", "not netcdf")(c))],
            EXIT_INPUT, ("x.nc",)),
    CliCase("unknown-option", lambda c: ["info", "--bogus"], EXIT_USAGE, ("--bogus",)),
    CliCase("demo-out-is-file",
            lambda c: ["demo", "--out", str(write_text("demo.txt", "x")(c))], EXIT_OUTPUT,
            ("demo.txt", "is a file")),
    CliCase("fetch-out-under-a-file",
            lambda c: ["fetch", "--out", str(write_text("f.txt", "x")(c) / "data")],
            EXIT_OUTPUT, ("f.txt", "is a file")),
    CliCase("demo-chains-0", lambda c: ["demo", "--out", str(c.tmp / "d"), "--chains", "0"],
            EXIT_USAGE, ("--chains",)),
]


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: c.id)
def test_bad_command_line(case, ctx, monkeypatch):
    import vekst.fit

    # Nothing may be fitted or projected when the input is bad.
    def refuse(*args, **kwargs):
        raise AssertionError("computation started despite bad input")

    monkeypatch.setattr(vekst.fit, "fit_model", refuse)
    monkeypatch.setattr("vekst.projection.project", refuse)
    result = CliRunner().invoke(app, case.args(ctx))
    assert result.exit_code == case.exit_code, result.output
    assert "Traceback" not in result.output
    for name in case.names:
        assert name in result.output, f"{case.id}: {name!r} not in {result.output}"
    if case.id == "project-out-holds-user-files":
        assert (ctx.tmp / "mine" / "thesis.docx").read_text() == "months of work"
    assert not (ctx.tmp / "out").exists()


def test_fit_reads_the_panel_given(ctx, monkeypatch):
    """`vekst fit --panel FILE` fits that file's panel, validated, not the embedded one."""
    import vekst.workflow

    seen = {}

    def stop(panel, spec, config):
        seen["codes"] = [str(c) for c in panel["municipality"].values]
        seen["draws"] = config.draws
        raise UsageError("stopped before sampling")

    monkeypatch.setattr(vekst.workflow, "fit_panel", stop)
    args = ["fit", "--panel", str(ctx.panel_file), "--out", str(ctx.tmp / "f.nc"),
            "--draws", "7"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_USAGE and "stopped before sampling" in result.output
    assert seen == {"codes": CODES, "draws": 7}


def test_debug_shows_the_exception(ctx):
    args = ["info", "--panel", str(write_text("x.nc", "not netcdf")(ctx))]
    plain = CliRunner().invoke(app, args)
    assert plain.exit_code == EXIT_INPUT and plain.output.startswith("error: ")
    debug = CliRunner().invoke(app, ["--debug", *args])
    assert isinstance(debug.exception, PanelValidationError)

