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
