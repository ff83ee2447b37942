"""Keyed tasks on Dask: recovery replicates and scenario ensembles equal the serial run."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

pytest.importorskip("distributed")

from vekst.cluster import TaskRunner, run_tasks
from vekst.recovery import check_recovery, migration_only

YEARS = range(2005, 2008)


def _draw(key: int, scale: float) -> np.ndarray:
    return scale * np.random.default_rng([7, key]).normal(size=3)


def _fails_on_two(key: int, scale: float) -> np.ndarray:
    if key == 2:
        raise ValueError("no data for key 2")
    return _draw(key, scale)


def test_run_tasks_distributed_equals_serial_and_keeps_the_others(dask_client):
    serial = run_tasks(_fails_on_two, [3, 1, 2, 0], shared={"scale": 2.0})
    lines: list[str] = []
    spread = run_tasks(
        _fails_on_two,
        [3, 1, 2, 0],
        shared={"scale": 2.0},
        runner=TaskRunner(client=dask_client, log=lines.append),
        label="job",
    )
    assert list(serial.results) == list(spread.results) == [3, 1, 0]  # the keys' order
    for key in serial.results:
        np.testing.assert_array_equal(serial.results[key], spread.results[key])
        np.testing.assert_array_equal(spread.results[key], _draw(key, 2.0))
    assert serial.failures == spread.failures == {2: "ValueError: no data for key 2"}
    assert sum("/4 jobs)" in line for line in lines) == 4
    assert any("job 2: task FAILED" in line for line in lines)
    with pytest.raises(ValueError, match="unique"):
        run_tasks(_draw, [1, 1], shared={"scale": 1.0})


def _stand_in_fit(monkeypatch):
    """A fit whose posterior depends on the simulated panel and the sampling seed."""

    def fit_panel(panel, spec=None, config=None, *, employment_rate=None):
        if config.seed == 100_000 + 1:  # replicate 1 fails, the others go on
            raise RuntimeError("sampler crashed")
        rate = panel["net_migration_total"] / panel["population"].sum(("age", "sex"))
        centre = rate.mean("municipality").sel(year=list(YEARS)).values * 100
        rng = np.random.default_rng(config.seed)
        shape = (config.chains, config.draws, len(YEARS))
        samples = centre[None, None] + rng.normal(0, 0.5, shape)
        posterior = xr.Dataset(
            {"year_effect": (("chain", "draw", "year"), samples)},
            coords={"year": list(YEARS)},
        )
        diagnostics = SimpleNamespace(
            rhat_max=1.0,
            divergences=0,
            as_dict=lambda: {"rhat_max": 1.0, "divergences": 0, "converged": True},
        )
        return SimpleNamespace(
            idata=SimpleNamespace(posterior=posterior),
            migration=SimpleNamespace(covariates=[]),
            diagnostics=diagnostics,
        )

    monkeypatch.setattr("vekst.workflow.fit_panel", fit_panel)


def test_recovery_replicates_on_dask_equal_the_serial_run(dask_client, monkeypatch):
    from vekst.models.spec import load_spec

    _stand_in_fit(monkeypatch)  # in-process workers see the stand-in fit
    options = {
        "spec": migration_only(load_spec()),
        "regions": 1,
        "draws": 50,
        "chains": 2,
        "seed": 0,
        "years": YEARS,
    }
    serial = check_recovery(2, **options)
    seen: list[int] = []
    spread = check_recovery(
        2,
        **options,
        runner=TaskRunner(client=dask_client),
        on_replicate=lambda r, outcome, seconds: seen.append(r),
    )
    pd.testing.assert_frame_equal(spread, serial)
    row = serial.set_index("group").loc["year_effect"]
    assert row["n"] == len(YEARS)  # one replicate scored
    assert 0 < row["cover_94"] <= 1
    for table in (serial, spread):
        assert table.attrs["failed_replicates"] == {1: "RuntimeError: sampler crashed"}
        assert [fit["replicate"] for fit in table.attrs["fits"]] == [0]
    assert seen == [0]


def test_scenario_ensemble_on_dask_equals_each_scenario_projected_alone(dask_client):
    from vekst.projection import (
        JobGrowth,
        ProjectionOptions,
        Scenario,
        make_test_draws,
        project,
        project_scenarios,
    )
    from vekst.projection.testing import toy_panel

    panel = toy_panel(5)
    draws = make_test_draws(panel, 4, seed=2)
    options = ProjectionOptions(end_year=2028, seed=3)
    scenarios = [
        None,
        Scenario(name="more births", asfr_multiplier=1.3),
        # Job growth of a place the panel lacks: this task raises.
        Scenario(name="elsewhere", job_growth=(JobGrowth("9999", 2025, 1.0),)),
    ]
    serial = project_scenarios(panel, draws, scenarios, options)
    runner = TaskRunner(client=dask_client)
    spread = project_scenarios(panel, draws, scenarios, options, runner=runner)
    assert list(serial.projections) == list(spread.projections) == ["baseline", "more births"]
    assert set(serial.failures) == set(spread.failures) == {"elsewhere"}
    assert "9999" in spread.failures["elsewhere"]
    for name, scenario in zip(["baseline", "more births"], scenarios, strict=False):
        alone = project(panel, draws, options, scenario=scenario)
        for result in (serial, spread):
            np.testing.assert_array_equal(
                result.projections[name]["population"].values, alone["population"].values
            )
    # Common random numbers: the same shocks, so more births give more newborns in
    # every draw (not just on average).
    newborn = {
        name: p["population"].sel(age=0).isel(year=-1).sum(("municipality", "sex"))
        for name, p in spread.projections.items()
    }
    assert bool((newborn["more births"] > newborn["baseline"]).all())
    with pytest.raises(ValueError, match="named 'baseline'"):
        project_scenarios(panel, draws, [None, Scenario()], options)


def test_project_command_writes_one_folder_per_scenario(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import vekst.commands.project as command
    from vekst.cli import app
    from vekst.projection import make_test_draws
    from vekst.projection.testing import toy_panel

    panel = toy_panel(4)
    draws = make_test_draws(panel, 3, seed=1)
    # A stand-in for reading a fit: the toy panel and test draws, converged.
    monkeypatch.setattr(command, "_load_inputs", lambda fit, settings: (panel, draws, True))
    (tmp_path / "low.json").write_text('{"asfr_multiplier": 0.8}')
    (tmp_path / "high.json").write_text('{"asfr_multiplier": 1.2}')
    fit = tmp_path / "fit.nc"
    fit.write_text("stand-in")
    common = ["project", "--fit", str(fit), "--end-year", "2026", "--draws", "3"]
    runner = CliRunner()
    both = runner.invoke(
        app,
        [*common, "--out", str(tmp_path / "ens"), "--scenario", str(tmp_path / "low.json"),
         "--scenario", str(tmp_path / "high.json")],
    )
    assert both.exit_code == 0, both.output
    alone = runner.invoke(
        app, [*common, "--out", str(tmp_path / "one"), "--scenario", str(tmp_path / "high.json")]
    )
    assert alone.exit_code == 0, alone.output
    low = xr.load_dataset(tmp_path / "ens" / "low" / "projection.nc")
    high = xr.load_dataset(tmp_path / "ens" / "high" / "projection.nc")
    single = xr.load_dataset(tmp_path / "one" / "projection.nc")
    np.testing.assert_array_equal(high["population"].values, single["population"].values)
    assert float(low["population"].sel(age=0).sum()) < float(high["population"].sel(age=0).sum())
    refused = runner.invoke(
        app, [*common, "--out", str(tmp_path / "x"), "--workers", "2",
              "--scenario", str(tmp_path / "low.json")],
    )
    assert refused.exit_code == 1 and "two or more" in refused.output
