"""Command-line conventions: --version, -h, missing files, --quiet, enums for choices."""

import pytest
from typer.testing import CliRunner

import vekst
from vekst.cli import app


@pytest.fixture
def runner():
    return CliRunner()


def test_version_prints_the_package_version(runner):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"vekst {vekst.__version__}"


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_short_and_long_help(runner, flag):
    result = runner.invoke(app, [flag])
    assert result.exit_code == 0
    for command in ("demo", "fit", "project", "report", "backtest"):
        assert command in result.output
    sub = runner.invoke(app, ["project", flag])
    assert sub.exit_code == 0 and "--draws" in sub.output


@pytest.mark.parametrize(
    ("args", "name"),
    [(["fit", "--spec", "missing.toml"], "missing.toml"), (["info", "--panel", "x.nc"], "x.nc")],
)
def test_missing_file_is_a_short_error_not_a_traceback(runner, tmp_path, args, name):
    result = runner.invoke(app, args)
    assert result.exit_code == 2  # bad input (docs/errors.md)
    assert "Traceback" not in result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert name in result.output
    assert "not found" in result.output or "cannot be read" in result.output
    assert not isinstance(result.exception, FileNotFoundError)


def test_quiet_and_verbose_exclude_each_other(runner):
    result = runner.invoke(app, ["--quiet", "--verbose", "info"])
    assert result.exit_code != 0
    assert "exclude each other" in result.output


def test_choices_are_checked(runner, tmp_path):
    fit = tmp_path / "fit.nc"
    fit.write_text("stand-in")
    result = runner.invoke(
        app, ["project", "--fit", str(fit), "--out", str(tmp_path), "--detail", "everything"]
    )
    assert result.exit_code == 1  # usage error (docs/errors.md)
    assert "everything" in result.output and "age_groups" in result.output


def test_demo_and_project_share_the_draw_default():
    import typer

    from vekst.commands.demo import DemoSettings
    from vekst.commands.project import ProjectSettings

    commands = typer.main.get_command(app).commands
    defaults = {
        "project": {p.name: p.default for p in commands["project"].params}["draws"],
        "demo": {p.name: p.default for p in commands["demo"].params}["projection_draws"],
    }
    assert defaults["project"] == defaults["demo"]
    assert DemoSettings().projection_draws == ProjectSettings().draws == defaults["demo"]


def _commands():
    import typer

    return typer.main.get_command(app).commands


@pytest.mark.parametrize("command", sorted(_commands()))
def test_option_names_are_whole_in_an_80_column_terminal(runner, command):
    # Rich's option table cut names and defaults that did not fit their column
    # ("--projection-dra…", "bayes,ols,naive…"): a user at 80 columns could not read or
    # copy them.
    import re

    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    names = set(re.findall(r"--[a-z][a-z-]*", result.output))
    declared = {
        name
        for param in _commands()[command].params
        for name in (*param.opts, *param.secondary_opts)
        if name.startswith("--")
    }
    assert declared and declared <= names, declared - names
    assert "…" not in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80


def test_the_fit_table_keeps_every_value_whole_at_80_columns():
    # At 80 columns rich wrapped values inside their cells ("0.071 [0.036," / "0.109]").
    import re
    from types import SimpleNamespace

    import numpy as np
    import xarray as xr
    from rich.console import Console

    from vekst.commands.fit import coefficient_table

    covariates, years = ["vra_0", "centrality", "housing_0", "ds"], [2019, 2020, 2021]
    rng = np.random.default_rng(0)
    dims = ("chain", "draw", "covariate")
    posterior = xr.Dataset(
        {
            "beta_mu": (dims, rng.normal(-0.05, 0.2, (2, 50, 4))),
            "beta_sigma": (dims, np.abs(rng.normal(0.02, 0.01, (2, 50, 4)))),
            "beta_year": ((*dims, "year"), rng.normal(-0.05, 0.2, (2, 50, 4, 3))),
        },
        coords={"covariate": covariates, "year": years},
    )
    ols = SimpleNamespace(
        beta=xr.DataArray([0.071, 4.931, -2.145, -0.4], coords={"covariate": covariates}),
        beta_se=xr.DataArray([0.137, 2.005, 1.314, 0.2], coords={"covariate": covariates}),
        beta_year=xr.DataArray(
            rng.normal(-1, 1, (4, 3)), coords={"covariate": covariates, "year": years}
        ),
    )
    fit = SimpleNamespace(idata=SimpleNamespace(posterior=posterior))
    console = Console(width=80, record=True)
    console.print(coefficient_table(fit, ols))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text
    # 4 intervals and 4 x 3 yearly pairs, each whole on one line.
    assert len(re.findall(r"\[-?\d\.\d{3}, -?\d\.\d{3}\]", text)) == 4
    assert len(re.findall(r"20(19|20|21): -?\d\.\d{3}/-?\d\.\d{3}", text)) == 12


def test_a_step_redirected_to_a_file_says_what_it_did(capsys):
    # A transient spinner printed only a blank line into logs and CI output.
    from vekst.commands.ui import Verbosity, configure, step

    configure(Verbosity.normal)
    with step("projecting 3 draws to 2040"):
        pass
    err = capsys.readouterr().err
    assert err.strip() == "projecting 3 draws to 2040: 0 s"


def test_info_shows_every_variable_name_whole_at_80_columns(runner):
    # "employed_workpla…" hid the name a user would type.
    from vekst import load_default
    from vekst.data.panel import describe_availability

    result = runner.invoke(app, ["info"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    for name in describe_availability(load_default()):
        assert f" {name} " in result.output, name
