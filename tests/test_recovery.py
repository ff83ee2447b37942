"""Recovery of known truth from Simulated Norway: a quick fit, scoring, and coverage (slow)."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from rich.console import Console

from vekst.commands.simulate import YearRangeError, coverage_table, parse_regions, parse_years
from vekst.models.spec import load_spec
from vekst.recovery import (
    COVERAGE_LEVELS,
    RecoveryConfig,
    check_recovery,
    default_truth,
    exchangeable_years,
    migration_only,
    score_ols,
    score_posterior,
)


def _posterior(center: np.ndarray, sd: float, n_draws: int = 4000, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    draws = center[None, None, :] + sd * rng.normal(size=(2, n_draws // 2, center.size))
    return xr.Dataset(
        {"attractiveness": (("chain", "draw", "municipality"), draws)},
        coords={"municipality": [f"{i:04d}" for i in range(center.size)]},
    )


def test_score_posterior_counts_true_values_inside_central_intervals():
    codes = [f"{i:04d}" for i in range(4)]
    # Truth reversed relative to the posterior's municipality order: scoring must align.
    truth = xr.Dataset(
        {"attractiveness": ("municipality", [3.0, 0.0, 0.0, 0.0])},
        coords={"municipality": codes[::-1]},
    )
    posterior = _posterior(np.array([0.0, 0.0, 0.0, 0.0]), sd=1.0)
    scores = score_posterior(posterior, truth)["attractiveness"]
    # The last municipality's truth is 3 sd away: outside every interval.
    for level in COVERAGE_LEVELS:
        assert scores.covered[level].tolist() == [True, True, True, False]
    # Width of a central 94 % normal interval is about 2 * 1.88 sd.
    np.testing.assert_allclose(scores.width[0.94].mean(), 2 * 1.881, rtol=0.05)
    assert set(score_posterior(posterior, truth)) == {"attractiveness"}


def test_score_ols_uses_z_times_se():
    from types import SimpleNamespace

    cov = {"covariate": ["a", "b"]}
    ols = SimpleNamespace(
        beta=xr.DataArray([1.0, 1.0], dims="covariate", coords=cov),
        beta_se=xr.DataArray([0.5, 0.5], dims="covariate", coords=cov),
        beta_year=xr.DataArray(
            [[1.0, np.nan]], dims=("covariate", "year"), coords={"covariate": ["a"], "year": [1, 2]}
        ),
        beta_year_se=xr.DataArray(
            [[0.1, np.nan]], dims=("covariate", "year"), coords={"covariate": ["a"], "year": [1, 2]}
        ),
        attractiveness=xr.DataArray([0.0], dims="municipality", coords={"municipality": ["x"]}),
    )
    truth = xr.Dataset(
        {
            "beta_mu": ("covariate", [1.2, 2.5]),
            "beta_year": (("covariate", "year"), [[1.5, 0.0], [9.0, 9.0]]),
            "attractiveness": ("municipality", [0.1]),
        },
        coords={"covariate": ["a", "b"], "year": [1, 2], "municipality": ["x"]},
    )
    scores = score_ols(ols, truth)
    # 1.2 is 0.4 se from 1.0 (inside the 50 % interval, +-0.674 se); 2.5 is 3 se away.
    assert scores["beta_mu"].covered[0.5].tolist() == [True, False]
    # The year without an OLS fit is skipped; 1.5 is 5 se from 1.0.
    assert scores["beta_year"].covered[0.94].tolist() == [False]
    assert scores["attractiveness"].covered[0.5].size == 0


def test_cli_parsers():
    assert parse_years("2005-2021") == range(2005, 2022)
    assert parse_years("2010") == range(2010, 2011)
    with pytest.raises(YearRangeError, match="2005-2021"):
        parse_years("05-21")
    assert parse_regions(["049,056", "090"]) == ["049", "056", "090"]
    assert parse_regions(None) is None


def test_migration_only_spec_drops_the_vital_blocks_only():
    spec = load_spec()
    reduced = migration_only(spec)
    assert not reduced.fertility.enabled and not reduced.mortality.enabled
    assert reduced.migration == spec.migration
    assert reduced.hash != spec.hash


def _iid_migration_spec():
    """The default spec's migration block with exchangeable years: the structure of the
    published calibration the recovery checks simulate by default. (The time-structured
    default fitted to such panels scored 1-3 % coverage of the year effects: it estimates
    another quantity.)"""
    return exchangeable_years(migration_only(load_spec()))


def test_default_truth_follows_the_specs_time_structure():
    iid = default_truth(_iid_migration_spec())
    assert iid.rho is None
    spec = load_spec()
    dynamic = default_truth(spec)
    assert set(dynamic.rho) == {"national_net_migration", "year_effect", *spec.migration.covariates}
    assert all(0 < value < 1 for value in dynamic.rho.values())
    raw = spec.to_dict()
    raw["migration"]["national_immigration"] = False
    from vekst.models.spec import spec_from_dict

    mixed = spec_from_dict(raw)
    with pytest.raises(ValueError, match=r"national_immigration=False.*truth_factory"):
        default_truth(mixed)
    # check_recovery says so before fitting anything.
    with pytest.raises(ValueError, match=mixed.name):
        check_recovery(1, spec=mixed)


@pytest.fixture(scope="module")
def quick():
    # Three regions (26 municipalities), one short fit. The migration block alone: the
    # vital blocks share no parameters with it and would double the compile time. A
    # calibrated 94 % interval misses 6 % of the time, so with five coefficients about one
    # seed in four has a miss (seed 11 misses centrality); calibration itself is checked by
    # the slow test.
    return check_recovery(
        1,
        spec=_iid_migration_spec(),
        regions=3,
        draws=300,
        tune=300,
        chains=2,
        seed=12,
        by_covariate=True,
    )


def test_quick_fit_recovers_pooled_coefficients_and_attractiveness(quick):
    table = quick.set_index(["group", "method"])
    assert table.loc[("beta_mu", "bayes"), "n"] == 5
    # Every pooled coefficient inside its 94 % interval.
    assert table.loc[("beta_mu", "bayes"), "cover_94"] == 1.0
    assert table.loc[("attractiveness", "bayes"), "corr"] > 0.6
    assert table.loc[("attract_region", "bayes"), "n"] == 3
    assert table.loc[("beta_year[centrality]", "bayes"), "n"] == 17
    assert table.loc[("beta_mu[ds]", "ols"), "n"] == 1
    # Partial pooling beats year-by-year OLS on the year coefficients.
    assert table.loc[("beta_year", "bayes"), "rmse"] < table.loc[("beta_year", "ols"), "rmse"]
    assert "fert_dev" not in set(quick["group"])
    for column in ("cover_50", "cover_80", "cover_94"):
        values = quick[column].dropna()
        assert ((values >= 0) & (values <= 1)).all()
    assert (quick["cover_50"].dropna() <= quick["cover_94"].dropna() + 1e-12).all()
    assert quick.attrs["fits"][0]["divergences"] >= 0


def test_recovery_config_object_and_keyword_forms_agree(quick):
    # After ``quick`` the compiled model (same regions and seed) is reused: only sampling.
    spec = _iid_migration_spec()
    settings = {"regions": 3, "draws": 60, "tune": 60, "chains": 1, "seed": 12}
    by_object = check_recovery(1, spec, RecoveryConfig(**settings, by_covariate=True))
    by_name = check_recovery(1, spec=spec, by_covariate=True, **settings)
    pd.testing.assert_frame_equal(by_object, by_name)
    assert by_object.attrs["draws"] == 60 and "beta_mu[ds]" in set(by_object["group"])
    # Fewer draws than ``quick``: other numbers, so the settings reached the fit.
    assert not np.allclose(by_object["rmse"], quick["rmse"], equal_nan=True)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['regoins'\]"):
        check_recovery(1, spec, regoins=3)


def test_coverage_table_reads_whole_at_80_columns(quick):
    # Bayes and OLS side by side made twelve columns; at 80 rich cut the numbers.
    console = Console(record=True, width=80)
    console.print(coverage_table(quick))
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    for group in set(quick["group"]):
        assert f" {group} " in text, group
    # One Bayes and one OLS row per group that both methods score.
    assert text.count("│ Bayes ") == (quick["method"] == "bayes").sum()
    assert text.count("│ OLS ") == (quick["method"] == "ols").sum()
    assert "94 %" in text


@pytest.mark.slow
def test_migration_coverage_is_near_nominal_over_replicates():
    table = check_recovery(30, spec=_iid_migration_spec(), regions=6, draws=500, tune=500, seed=500)
    bayes = table[table["method"] == "bayes"].set_index("group")
    ols = table[table["method"] == "ols"].set_index("group")
    # Groups with many values per replicate: coverage close to the nominal level.
    for group in ("beta_year", "year_effect", "attractiveness"):
        for level, tolerance in ((50, 0.08), (80, 0.07), (94, 0.05)):
            coverage = bayes.loc[group, f"cover_{level}"]
            assert abs(coverage - level / 100) < tolerance, (group, level, coverage)
    # Pooled means: one value per covariate and replicate (150 values).
    assert bayes.loc["beta_mu", "cover_94"] > 0.85
    # OLS ignores the year-to-year variation of the coefficients: its pooled intervals are
    # too narrow for the pooled mean, and year-by-year OLS is less accurate.
    assert ols.loc["beta_mu", "cover_94"] < bayes.loc["beta_mu", "cover_94"]
    assert bayes.loc["beta_year", "rmse"] < ols.loc["beta_year", "rmse"]


@pytest.mark.slow
def test_vital_deviation_coverage_is_near_nominal_over_replicates():
    # Exchangeable years: the vital blocks share no parameters with the migration block,
    # whose time-structured form needs longer chains than this check runs.
    table = check_recovery(
        8, spec=exchangeable_years(load_spec()), regions=6, draws=500, tune=500, seed=700
    )
    bayes = table[table["method"] == "bayes"].set_index("group")
    for group in ("fert_dev", "mort_dev"):
        for level, tolerance in ((50, 0.10), (80, 0.08), (94, 0.06)):
            coverage = bayes.loc[group, f"cover_{level}"]
            assert abs(coverage - level / 100) < tolerance, (group, level, coverage)
        assert bayes.loc[group, "corr"] > 0.7


def test_check_recovery_command_fits_the_spec_with_exchangeable_years(quick):
    from typer.testing import CliRunner

    from vekst.cli import app

    args = ["check-recovery", "--replicates", "1", "--regions", "3", "--draws", "60"]
    args += ["--tune", "60", "--chains", "1", "--seed", "12", "--migration-only"]
    result = CliRunner().invoke(app, [*args, "--exchangeable-years"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "spec vareide2022-migration-iid" in " ".join(result.output.split())
    assert "beta_year" in result.output
