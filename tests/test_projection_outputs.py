"""Summaries, aggregation (draws summed before quantiles), files and the CLI command."""

from __future__ import annotations

import json
import types

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from vekst.projection import (
    AGE_GROUPS,
    age_group_summary,
    aggregate,
    make_test_draws,
    population_summary,
    project,
    write_projection_files,
)
from vekst.projection.testing import toy_panel

BASE = 2022


@pytest.fixture(scope="module")
def panel():
    return toy_panel(5, (2010, BASE), n_regions=2, seed=6)


@pytest.fixture(scope="module")
def projection(panel):
    return project(panel, make_test_draws(panel, 30, seed=2), base_year=BASE, end_year=2026)


def tiny_projection(values: np.ndarray, regions: list[str]) -> xr.Dataset:
    """A hand-made projection: totals (draw, year=1, municipality)."""
    n_draws, n_mun = values.shape
    return xr.Dataset(
        {"population_total": (("draw", "year", "municipality"), values[:, None, :])},
        coords={
            "draw": np.arange(n_draws),
            "year": [2030],
            "municipality": [f"30{i + 1:02d}" for i in range(n_mun)],
            "region": ("municipality", regions),
            "county": ("municipality", ["30"] * n_mun),
            "name": ("municipality", [f"M{i}" for i in range(n_mun)]),
        },
    )


def test_national_median_is_the_median_of_summed_draws():
    # Municipal medians are 1 and 1 (sum 2); the draws sum to 10, 1, 11 -> median 10.
    values = np.array([[0.0, 10.0], [1.0, 0.0], [10.0, 1.0]])
    projection = tiny_projection(values, ["A", "A"])
    nation = aggregate(projection, "nation")
    municipal = population_summary(projection)
    assert municipal["q50"].sum() == pytest.approx(2.0)
    assert nation["q50"].item() == pytest.approx(10.0)
    assert nation["mean"].item() == pytest.approx(values.sum(1).mean())
    assert nation["q975"].item() == pytest.approx(np.quantile(values.sum(1), 0.975))


def test_region_aggregates_sum_members_per_draw():
    rng = np.random.default_rng(1)
    values = rng.gamma(2.0, 100.0, size=(200, 4))
    projection = tiny_projection(values, ["A", "B", "A", "B"])
    regions = aggregate(projection, "region").set_index("region")
    for label, members in (("A", [0, 2]), ("B", [1, 3])):
        summed = values[:, members].sum(1)
        assert regions.loc[label, "q10"] == pytest.approx(np.quantile(summed, 0.10))
        assert regions.loc[label, "q90"] == pytest.approx(np.quantile(summed, 0.90))
    # A sum of municipal 10 % quantiles is a far lower bound than the regional 10 % quantile.
    municipal_q10 = population_summary(projection).set_index("municipality")["q10"]
    assert municipal_q10[["3001", "3003"]].sum() < regions.loc["A", "q10"]


def test_population_summary_columns_and_order(projection):
    frame = population_summary(projection)
    assert list(frame.columns) == [
        "municipality", "name", "year", "mean", "q025", "q10", "q50", "q90", "q975"
    ]
    assert len(frame) == projection.sizes["municipality"] * projection.sizes["year"]
    quantiles = frame[["q025", "q10", "q50", "q90", "q975"]].to_numpy()
    assert np.all(np.diff(quantiles, axis=1) >= -1e-9)
    start = frame[frame["year"] == BASE].set_index("municipality")["mean"]
    observed = projection["population_total"].sel(year=BASE, draw=0).to_series()
    np.testing.assert_allclose(start.to_numpy(), observed.to_numpy())


def test_age_groups_cover_every_age_once(projection):
    frame = age_group_summary(projection)
    assert list(frame["age_group"].unique()) == [label for label, _, _ in AGE_GROUPS]
    by_place = frame.groupby(["municipality", "year"])["mean"].sum()
    totals = population_summary(projection).set_index(["municipality", "year"])["mean"]
    np.testing.assert_allclose(by_place.loc[totals.index].to_numpy(), totals.to_numpy(),
                               rtol=1e-6)
    # The same from a projection that kept only age groups.
    panel = toy_panel(5, (2010, BASE), n_regions=2, seed=6)
    grouped = project(panel, make_test_draws(panel, 30, seed=2), base_year=BASE,
                      end_year=2026, detail="age_groups")
    assert "population" not in grouped
    pd.testing.assert_frame_equal(age_group_summary(grouped), frame, rtol=1e-5)


def test_write_outputs_round_trip(tmp_path, projection):
    written = write_projection_files(projection, tmp_path / "out")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted(
        ["projection.nc", "population_summary.csv", "age_groups.csv", "region.csv",
         "county.csv", "nation.csv", "data_dictionary.csv", "manifest.json"]
    )
    assert set(written) == {"projection", "population_summary", "age_groups", "region",
                            "county", "nation", "data_dictionary"}
    back = xr.load_dataset(written["projection"], engine="h5netcdf")
    np.testing.assert_array_equal(back["population"].values, projection["population"].values)
    assert json.loads(back.attrs["scenario"])["name"] == "baseline"
    nation = pd.read_csv(written["nation"])
    # Persons are rounded to whole numbers in the CSV files.
    assert nation["q50"].iloc[-1] == pytest.approx(
        float(np.quantile(projection["population_total"].sum("municipality").isel(year=-1),
                          0.5)),
        abs=0.5,
    )


def test_cli_project_command(tmp_path, monkeypatch, panel):
    """`vekst project` with the fit module's functions replaced by stand-ins."""
    from typer.testing import CliRunner

    import vekst
    from vekst.cli import app

    calls = {}

    class Diagnostics:
        converged = False
        problems = ("R-hat 1.05 > 1.01 for 'beta_mu'",)

    class NotConvergedError(RuntimeError):
        pass

    def require_converged(idata, allow_unconverged=False):
        calls["allow"] = allow_unconverged
        if not allow_unconverged:
            raise NotConvergedError("the fit did not converge: R-hat")
        return Diagnostics()

    fake_fit = types.SimpleNamespace(
        load_fit=lambda path: types.SimpleNamespace(idata="idata", spec="spec"),
        check_fit_panel=lambda fit, panel: None,
        projection_draws=lambda idata, n_draws=None, seed=0: make_test_draws(panel, n_draws),
        require_converged=require_converged,
        NotConvergedError=NotConvergedError,
    )
    monkeypatch.setitem(__import__("sys").modules, "vekst.fit", fake_fit)
    monkeypatch.setattr(vekst, "load_default", lambda: panel)
    fit_file = tmp_path / "fit.nc"
    fit_file.write_text("stand-in")
    scenario = tmp_path / "jobs.csv"
    scenario.write_text("municipality_or_region,year,relative_job_growth\nR1,2023,1\n")
    runner = CliRunner()
    args = ["project", "--fit", str(fit_file), "--end-year", "2025", "--draws", "8",
            "--scenario", str(scenario), "--out", str(tmp_path / "out")]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 3
    assert not (tmp_path / "out").exists()
    result = runner.invoke(app, [*args, "--allow-unconverged"])
    assert result.exit_code == 0, result.output
    assert calls["allow"] is True
    # Five municipalities are not Norway: the national table says what was summed.
    assert "all 5 municipalities" in result.output and "Norway" not in result.output
    back = xr.load_dataset(tmp_path / "out" / "projection.nc", engine="h5netcdf")
    assert back.attrs["converged"] == "no"
    assert back.sizes["draw"] == 8
    assert json.loads(back.attrs["scenario"])["job_growth"][0]["unit"] == "R1"


def test_norwegian_csv_reads_back_the_netcdf_numbers(tmp_path, projection):
    """Excel-with-Norwegian-settings files: BOM, ';', decimal comma, codes as text, 0644."""
    import codecs
    import os
    import stat

    from vekst.projection import CsvStyle

    n = projection.sizes["municipality"]
    # Codes with a leading zero (Oslo's county) must survive the round trip as text.
    relabelled = projection.assign_coords(
        municipality=[f"03{i + 1:02d}" for i in range(n)], county=("municipality", ["03"] * n)
    )
    written = write_projection_files(
        relabelled, tmp_path / "out", csv_style=CsvStyle.norwegian()
    )
    for path in written.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, path
    summary_file = written["population_summary"]
    raw = summary_file.read_bytes()
    assert raw.startswith(codecs.BOM_UTF8)
    assert raw[3:].decode("utf-8").splitlines()[0].startswith("municipality;name;year;mean")

    frame = pd.read_csv(summary_file, sep=";", decimal=",", dtype={"municipality": str})
    back = xr.load_dataset(written["projection"], engine="h5netcdf")
    assert list(frame["municipality"].unique()) == list(back["municipality"].values)
    totals = back["population_total"].transpose("draw", "year", "municipality").values
    for _, row in frame.sample(10, random_state=1).iterrows():
        m = list(back["municipality"].values).index(row["municipality"])
        y = list(back["year"].values).index(row["year"])
        draws = totals[:, y, m].astype(np.float64)
        assert abs(row["q50"] - np.quantile(draws, 0.5)) <= 0.5
        assert abs(row["q10"] - np.quantile(draws, 0.1)) <= 0.5
        assert abs(row["mean"] - draws.mean()) <= 0.5

    county = pd.read_csv(written["county"], sep=";", decimal=",", dtype={"county": str})
    assert set(county["county"]) == {"03"}
    assert set(county["name"]) == {"Oslo-Oslove"}  # filled from the 2024 table, not the code
    ages = pd.read_csv(written["age_groups"], sep=";", dtype={"municipality": str})
    assert list(ages.columns[:4]) == ["municipality", "name", "year", "age_group"]
    dictionary = pd.read_csv(written["data_dictionary"], sep=";")
    for label in ("population_summary", "county", "age_groups"):
        columns = dictionary.loc[dictionary["file"] == f"{label}.csv", "column"]
        assert set(columns) == set(pd.read_csv(written[label], sep=";", nrows=0).columns)
    assert dictionary["meaning"].str.len().gt(0).all()


def test_cli_project_quiet_prints_nothing_but_writes_files(tmp_path, monkeypatch, panel):
    """`vekst --quiet project`: no table, no file list, no progress; the files are there."""
    from typer.testing import CliRunner

    import vekst
    from vekst.cli import app

    class Diagnostics:
        converged = True
        problems = ()

    fake_fit = types.SimpleNamespace(
        load_fit=lambda path: types.SimpleNamespace(idata="idata", spec="spec"),
        check_fit_panel=lambda fit, panel: None,
        projection_draws=lambda idata, n_draws=None, seed=0: make_test_draws(panel, n_draws),
        require_converged=lambda idata, allow_unconverged=False: Diagnostics(),
        NotConvergedError=RuntimeError,
    )
    monkeypatch.setitem(__import__("sys").modules, "vekst.fit", fake_fit)
    monkeypatch.setattr(vekst, "load_default", lambda: panel)
    fit_file = tmp_path / "fit.nc"
    fit_file.write_text("stand-in")
    def args(out):
        return ["project", "--fit", str(fit_file), "--end-year", "2024", "--draws", "4",
                "--out", str(out), "--csv", "nb"]

    loud = CliRunner().invoke(app, args(tmp_path / "loud"))
    assert loud.exit_code == 0, loud.output
    assert "population on 1 January" in loud.output and "wrote" in loud.output
    quiet = CliRunner().invoke(app, ["--quiet", *args(tmp_path / "q")])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.output.strip() == ""
    nation = (tmp_path / "q" / "nation.csv").read_text(encoding="utf-8-sig")
    assert nation.splitlines()[0].startswith("nation;name;year")
