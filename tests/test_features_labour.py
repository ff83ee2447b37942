"""Demographic employment supply (DS) and the employment-rate profile."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from vekst.features import (
    EmploymentRateError,
    MissingEmploymentError,
    MissingRateError,
    demographic_supply,
    ds_percent,
    employment_curve,
    estimate_employment_profile,
)

AGES = np.arange(106)
TRUE_PARAMS = (0.82, 19.5, 1.6, 63.0, 2.2)


def rate_table(params=TRUE_PARAMS) -> np.ndarray:
    curve = employment_curve(AGES, *params)
    return np.stack([curve, curve], axis=-1)


def flat_q(value: float = 0.01) -> np.ndarray:
    return np.full((106, 2), value)


def test_single_cohort_by_hand():
    pop = np.zeros((106, 2))
    pop[20, 1] = 100.0
    rate = np.zeros((106, 2))
    rate[20, 1], rate[21, 1] = 0.5, 0.6
    q = np.zeros((106, 2))
    q[20, 1] = 0.01
    # DS_abs = 100 * (0.6 - 0.5) - 100 * 0.01 * 0.5 = 9.5 on an employment of 50.
    assert ds_percent(pop, rate, q) == pytest.approx(100 * 9.5 / 50)


def test_ages_outside_14_to_74_are_ignored():
    rng = np.random.default_rng(1)
    pop = rng.uniform(10, 100, size=(106, 2))
    base = ds_percent(pop, rate_table(), flat_q())
    changed = pop.copy()
    changed[:14] *= 5
    changed[75:] *= 5
    assert ds_percent(changed, rate_table(), flat_q()) == pytest.approx(base)
    changed[40] *= 5
    assert ds_percent(changed, rate_table(), flat_q()) != pytest.approx(base)


def test_retiring_population_negative_entering_population_positive():
    rate = rate_table()
    retiring = np.zeros((106, 2))
    retiring[58:68] = 100.0
    retiring[30:50] = 20.0
    entering = np.zeros((106, 2))
    entering[14:22] = 100.0
    entering[30:50] = 20.0
    assert ds_percent(retiring, rate, flat_q()) < -2.0
    assert ds_percent(entering, rate, flat_q()) > 2.0
    # A stationary prime-age population only loses its dead.
    prime = np.zeros((106, 2))
    prime[35:45] = 100.0
    assert ds_percent(prime, rate, flat_q(0.002)) == pytest.approx(-0.2, abs=0.01)


def test_kernel_broadcasts_over_leading_dims():
    rng = np.random.default_rng(2)
    pop = rng.uniform(0, 50, size=(3, 4, 106, 2))
    q = rng.uniform(0, 0.02, size=(3, 1, 106, 2))
    out = ds_percent(pop, rate_table(), q)
    assert out.shape == (3, 4)
    assert out[2, 1] == pytest.approx(ds_percent(pop[2, 1], rate_table(), q[2, 0]))


def test_zero_employment_gives_nan():
    assert np.isnan(ds_percent(np.zeros((106, 2)), rate_table(), flat_q()))


# --- panels -------------------------------------------------------------------------------


def simulated_panel(n_muni: int = 300, seed: int = 7) -> xr.Dataset:
    """Municipalities with different age structures; employed = Binomial(pop, true rate)."""
    rng = np.random.default_rng(seed)
    years = [2017, 2018, 2019]
    base = np.exp(-(((AGES - 40) / 35.0) ** 2))
    pop = np.empty((n_muni, len(years), 106, 2))
    for m in range(n_muni):
        tilt = rng.normal(0, 0.6)
        young = rng.normal(0, 0.5)
        old = rng.normal(0, 0.5)
        size = rng.uniform(2000, 20000)
        shape = base * np.exp(
            tilt * (AGES - 45) / 30
            + young * np.exp(-(((AGES - 20) / 5.0) ** 2))
            + old * np.exp(-(((AGES - 66) / 5.0) ** 2))
        )
        for j in range(len(years)):
            pop[m, j] = np.round(
                (size * shape / shape.sum())[:, None] * rng.uniform(0.95, 1.05, (106, 2))
            )
    rate = rate_table()
    counted = (AGES >= 15) & (AGES <= 74)
    employed = (
        rng.binomial(pop[..., counted, :].astype(np.int64), rate[counted])
        .sum((-2, -1))
        .astype(float)
    )
    mortality = np.broadcast_to(
        np.minimum(np.exp(-9.5 + 0.09 * AGES), 0.9)[:, None, None], (106, 2, len(years))
    ).copy()
    codes = [f"{3201 + m:04d}" for m in range(n_muni)]
    return xr.Dataset(
        {
            "population": (("municipality", "year", "age", "sex"), pop),
            "employed_residence": (("municipality", "year"), employed),
            "mortality_rate": (("age", "sex", "year"), mortality),
        },
        coords={
            "municipality": codes,
            "year": years,
            "age": AGES,
            "sex": ["female", "male"],
            "name": ("municipality", codes),
        },
    )


@pytest.fixture(scope="module")
def sim_panel() -> xr.Dataset:
    return simulated_panel()


@pytest.fixture(scope="module")
def sim_profile(sim_panel) -> xr.DataArray:
    return estimate_employment_profile(sim_panel, method="cross_section")


def test_cross_section_fit_recovers_simulated_rates(sim_profile):
    truth = employment_curve(AGES, *TRUE_PARAMS)
    fitted = sim_profile.sel(sex="male").values
    working = (AGES >= 15) & (AGES <= 74)
    # The steepness of the entry into work is the weakest-identified part of the curve.
    assert np.max(np.abs(fitted[working] - truth[working])) < 0.05
    prime = (AGES >= 25) & (AGES <= 60)
    assert np.max(np.abs(fitted[prime] - truth[prime])) < 0.01
    z = (sim_profile.attrs["parameters"] - np.array(TRUE_PARAMS)) / sim_profile.attrs[
        "parameter_se"
    ]
    assert np.all(np.abs(z) < 3.5), z
    assert np.all(fitted[AGES < 15] == 0.0)
    assert sim_profile.dims == ("age", "sex")
    assert sim_profile.attrs["units"]
    assert sim_profile.attrs["n_observations"] == 3 * 300


def group_rates(panel: xr.Dataset, params, year: int) -> dict[tuple[int, int], float]:
    """Population-weighted group means of a curve, as a statistics office would publish."""
    pop = panel["population"].sel(year=year).sum(("municipality", "sex")).values
    curve = employment_curve(AGES, *params)
    groups = [(15, 19), (20, 24), (25, 39), (40, 54), (55, 66), (67, 74)]
    return {
        (lo, hi): float((pop[lo : hi + 1] * curve[lo : hi + 1]).sum() / pop[lo : hi + 1].sum())
        for lo, hi in groups
    }


def test_anchored_profile_takes_shape_from_groups_and_level_from_data(sim_panel):
    # Published groups describe a curve 10 % above the one that generated the counts.
    published = (TRUE_PARAMS[0] * 1.1, *TRUE_PARAMS[1:])
    rates = group_rates(sim_panel, published, 2018)
    profile = estimate_employment_profile(sim_panel, age_group_rates=rates, anchor_year=2018)
    assert profile.attrs["level_factor"] == pytest.approx(1 / 1.1, rel=0.01)
    truth = employment_curve(AGES, *TRUE_PARAMS)
    np.testing.assert_allclose(profile.sel(sex="male").values, truth, atol=0.01)
    assert profile.attrs["anchor_year"] == 2018
    with pytest.raises(EmploymentRateError, match="fractions"):
        estimate_employment_profile(
            sim_panel, age_group_rates={k: 100 * v for k, v in rates.items()}
        )


def test_default_anchor_is_ssb_2006_shape(sim_panel):
    profile = estimate_employment_profile(sim_panel)
    shape = profile.sel(sex="male").values / profile.attrs["level_factor"]
    pop = sim_panel["population"].sel(year=2017).sum(("municipality", "sex")).values
    # The panel has no 2006, so its first year weights the groups; published 2006 values.
    for (lo, hi), published in {(20, 24): 0.731, (55, 66): 0.650, (67, 74): 0.171}.items():
        fitted = (pop[lo : hi + 1] * shape[lo : hi + 1]).sum() / pop[lo : hi + 1].sum()
        assert fitted == pytest.approx(published, abs=0.01)


def test_female_to_male_ratio_scales_women(sim_panel):
    profile = estimate_employment_profile(sim_panel, female_to_male=0.9)
    np.testing.assert_allclose(
        profile.sel(sex="female").values, 0.9 * profile.sel(sex="male").values
    )


def test_demographic_supply_uses_the_kernel(sim_panel, sim_profile):
    ds = demographic_supply(sim_panel, employment_rate=sim_profile, center=None)
    q = 1 - np.exp(-sim_panel["mortality_rate"].sel(year=2018).values)
    pop = sim_panel["population"].sel(municipality="3205", year=2018).values
    assert float(ds.sel(municipality="3205", year=2018)) == pytest.approx(
        float(ds_percent(pop, sim_profile.values, q))
    )
    assert ds.dims == ("municipality", "year")


def test_demographic_supply_centring(sim_panel, sim_profile):
    raw = demographic_supply(sim_panel, employment_rate=sim_profile, center=None)
    centred = demographic_supply(sim_panel, employment_rate=sim_profile)
    np.testing.assert_allclose(centred.mean("municipality"), 0.0, atol=1e-12)
    np.testing.assert_allclose(centred.attrs["center"], raw.mean("municipality").values)
    np.testing.assert_allclose(centred + centred.attrs["center"], raw)
    national = demographic_supply(sim_panel, employment_rate=sim_profile, center="national")
    assert not np.allclose(national.attrs["center"], centred.attrs["center"])


def test_demographic_supply_sign_follows_age_structure(sim_panel, sim_profile):
    ds = demographic_supply(sim_panel, employment_rate=sim_profile).sel(year=2018)
    pop = sim_panel["population"].sel(year=2018).sum("sex")
    old_share = pop.sel(age=slice(58, 70)).sum("age") / pop.sel(age=slice(15, 74)).sum("age")
    corr = np.corrcoef(ds.values, old_share.values)[0, 1]
    assert corr < -0.8


def test_nan_death_rates_give_nan_year_not_zero(sim_panel, sim_profile):
    panel = sim_panel.copy(deep=True)
    panel["mortality_rate"].loc[{"year": 2019, "age": 50}] = np.nan
    ds = demographic_supply(panel, employment_rate=sim_profile)
    assert ds.sel(year=2019).isnull().all()
    assert ds.sel(year=2018).notnull().all()


def test_user_rate_validation(sim_panel, sim_profile):
    with pytest.raises(EmploymentRateError, match="75"):
        demographic_supply(sim_panel, employment_rate=sim_profile.sel(age=slice(0, 74)))
    with pytest.raises(EmploymentRateError, match="fraction"):
        demographic_supply(sim_panel, employment_rate=sim_profile * 100)
    with pytest.raises(EmploymentRateError, match="dims"):
        demographic_supply(sim_panel, employment_rate=sim_profile.sel(sex="male"))


def test_missing_inputs_raise_named_errors(sim_panel):
    with pytest.raises(MissingEmploymentError, match="employed_residence"):
        demographic_supply(sim_panel.drop_vars("employed_residence"))
    with pytest.raises(MissingRateError, match="mortality_rate"):
        demographic_supply(sim_panel.drop_vars("mortality_rate"))
    with pytest.raises(MissingEmploymentError, match="2016"):
        estimate_employment_profile(sim_panel, years=[2016])


# --- the embedded real panel ---------------------------------------------------------------


@pytest.fixture(scope="module")
def real_profile(default_panel) -> xr.DataArray:
    return estimate_employment_profile(default_panel)


@pytest.fixture(scope="module")
def real_ds(default_panel, real_profile) -> xr.DataArray:
    return demographic_supply(default_panel, real_profile).sel(year=slice(2005, 2021))


def test_real_profile_is_plausible(default_panel, real_profile):
    rate = real_profile.sel(sex="male")
    assert 0.75 < float(rate.sel(age=slice(30, 50)).mean()) < 0.9
    assert float(rate.sel(age=16)) < 0.4
    assert float(rate.sel(age=70)) < 0.25
    assert abs(real_profile.attrs["level_factor"] - 1) < 0.05
    # Implied national employment within 4 % of the observed total each year.
    years = list(range(2017, 2022))
    pop = default_panel["population"].sel(year=years).sum("municipality")
    implied = (pop * real_profile).sum(("age", "sex"))
    observed = default_panel["employed_residence"].sel(year=years).sum("municipality")
    np.testing.assert_allclose(implied.values, observed.values, rtol=0.04)


def test_real_cross_section_fit_is_degenerate(default_panel):
    # Why the default is anchored: the cross-section alone gives a step function.
    fitted = estimate_employment_profile(default_panel, method="cross_section")
    rate = fitted.sel(sex="male")
    assert float(rate.sel(age=70)) < 0.01 and float(rate.sel(age=17)) > 0.7


def _corr(a: xr.DataArray, b: xr.DataArray) -> float:
    return float(np.corrcoef(a.values.ravel(), b.values.ravel())[0, 1])


def test_real_ds_robust_to_profile_shifts(default_panel, real_profile, real_ds):
    params = np.array(real_profile.attrs["parameters"])
    for index, shift in [(3, 2.0), (3, -2.0), (1, 2.0), (1, -2.0)]:
        moved = params.copy()
        moved[index] += shift
        curve = employment_curve(AGES, *moved)
        rate = xr.DataArray(
            np.stack([curve, curve], -1),
            dims=("age", "sex"),
            coords={"age": AGES, "sex": ["female", "male"]},
        )
        other = demographic_supply(default_panel, rate).sel(year=slice(2005, 2021))
        assert _corr(real_ds, other) > 0.97, (index, shift)
    women_lower = estimate_employment_profile(default_panel, female_to_male=0.93)
    other = demographic_supply(default_panel, women_lower).sel(year=slice(2005, 2021))
    assert _corr(real_ds, other) > 0.999
    # The level cancels in percent of implied employment.
    other = demographic_supply(default_panel, real_profile * 0.9).sel(year=slice(2005, 2021))
    np.testing.assert_allclose(other.values, real_ds.values, atol=1e-9)


def test_real_ds_extremes_match_the_source(default_panel, real_ds):
    # The source names Gjesdal (largest net supply) and Hvaler (largest net loss).
    mean = real_ds.sel(year=slice(2014, 2021)).mean("year")
    assert float((mean < mean.sel(municipality="1122")).mean()) > 0.95  # Gjesdal
    assert float((mean < mean.sel(municipality="3110")).mean()) < 0.05  # Hvaler
    assert real_ds.notnull().all()
    assert demographic_supply(default_panel).sel(year=2022).isnull().all()  # no 2022 m(x)
