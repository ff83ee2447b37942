"""The cohort-component kernel: hand-computed reference, accounting, no negative cells."""

from __future__ import annotations

import numpy as np
import pytest

from vekst.projection import make_test_draws, project
from vekst.projection.kernel import (
    MAX_WORKERS,
    DeathNoise,
    KernelInputs,
    apply_net_migration,
    kernel_workers,
    run_kernel,
)
from vekst.projection.testing import toy_panel

BASE, END = 2022, 2027


@pytest.fixture(scope="module")
def panel():
    return toy_panel(5, (2005, BASE), n_regions=2, seed=11)


@pytest.fixture(scope="module")
def draws(panel):
    return make_test_draws(panel, 12, seed=5)


def hand_projection(panel, years: int) -> np.ndarray:
    """Deterministic cohort-component projection written with plain loops.

    Conventions stated independently of the package: survival of the cohort aged a is
    exp(-(m[a] + m[a+1]) / 2) (open age: exp(-m[max])); births = ASFR x mean of the women
    on 1 January and 31 December at each age; newborns survive exp(-m[0] / 2); boys per
    girl from the panel's attribute; death rates fall 1.5 % a year from the last observed
    year (the toy panel's own trend); the last ASFR schedule is held.
    """
    ages = panel["age"].values
    top = len(ages) - 1
    last = BASE - 1
    m_last = panel["mortality_rate"].sel(year=last).transpose("sex", "age").values
    asfr = panel["fertility_rate"].sel(year=last).values
    srb = panel.attrs["sex_ratio_at_birth"]
    stock = panel["population"].sel(year=BASE).transpose("municipality", "sex", "age").values
    out = [stock.astype(float)]
    for step in range(years):
        year = BASE + step
        m = m_last * np.exp(-0.015 * (year - last))
        current = out[-1]
        nxt = np.zeros_like(current)
        for i in range(current.shape[0]):
            for s in range(2):
                for a in range(top + 1):
                    hazard = m[s, a] if a == top else (m[s, a] + m[s, a + 1]) / 2
                    nxt[i, s, min(a + 1, top)] += current[i, s, a] * np.exp(-hazard)
            births = 0.0
            for a in range(1, top + 1):
                births += asfr[a] * (current[i, 0, a] + nxt[i, 0, a]) / 2
            nxt[i, 0, 0] = births / (1 + srb) * np.exp(-m[0, 0] / 2)
            nxt[i, 1, 0] = births * srb / (1 + srb) * np.exp(-m[1, 0] / 2)
        out.append(nxt)
    return np.stack(out)  # (year, municipality, sex, age)


def test_zero_migration_matches_hand_computed_projection(panel):
    projection = project(panel, None, base_year=BASE, end_year=END)
    expected = hand_projection(panel, END - BASE)
    got = projection["population"].isel(draw=0).transpose("year", "municipality", "sex", "age")
    np.testing.assert_allclose(got.values, expected, rtol=2e-5, atol=1e-3)
    assert float(np.abs(projection["net_migration"].sel(year=slice(BASE, END - 1))).max()) == 0


def test_accounting_identity_holds_in_every_cell_and_year(panel, draws):
    records = []
    projection = project(
        panel, draws, base_year=BASE, end_year=END, seed=3, chunk_size=5,
        trace=lambda **kw: records.append(kw),
    )
    assert len(records) == 3 * (END - BASE)  # chunks of 5, 5, 2 draws
    for rec in records:
        rebuilt = (
            rec["survivors"].astype(np.float64)
            + rec["migration"].astype(np.float64)
        )
        rebuilt[..., 0] += rec["newborns"]
        assert np.abs(rebuilt - rec["end"]).max() < 0.01  # persons, per cell
        assert rec["end"].min() >= 0
        assert np.all(rec["survivors"][..., 0] == 0)
        # The migration recorded (computed from the totals) is what the cells received.
        np.testing.assert_allclose(rec["migration"].sum((2, 3)), rec["applied"], atol=0.01)
    # Stocks and flows: P[t+1] - P[t] = births - deaths + net migration, per draw and place.
    population = projection["population"].astype(np.float64).sum(("age", "sex"))
    change = population.diff("year").values
    flows = (projection["births"] - projection["deaths"] + projection["net_migration"])
    flows = flows.isel(year=slice(0, -1)).values
    assert np.abs(change - flows).max() < 0.5
    np.testing.assert_allclose(projection["population_total"].values, population.values, atol=0.05)


def test_chunking_and_precision_do_not_change_results(panel, draws):
    small = project(panel, draws, base_year=BASE, end_year=END, seed=9, chunk_size=2)
    large = project(panel, draws, base_year=BASE, end_year=END, seed=9, chunk_size=12)
    wide = project(
        panel, draws, base_year=BASE, end_year=END, seed=9, chunk_size=12, dtype=np.float64
    )
    np.testing.assert_allclose(small["population"], large["population"], rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(wide["population"], large["population"], rtol=1e-4, atol=0.01)
    other_seed = project(panel, draws, base_year=BASE, end_year=END, seed=10, chunk_size=12)
    assert not np.allclose(other_seed["population_total"], large["population_total"])


def test_threads_give_the_same_numbers_as_one(panel, draws):
    # Chunks of two draws over four threads: the shocks of every chunk are keyed by draw,
    # so threads may finish in any order and each chunk still gets its own numbers.
    serial = project(panel, draws, base_year=BASE, end_year=END, seed=4, chunk_size=2, workers=1)
    threaded = project(
        panel, draws, base_year=BASE, end_year=END, seed=4, chunk_size=2, workers=4
    )
    for name, variable in serial.data_vars.items():
        if variable.dtype.kind == "f":
            np.testing.assert_array_equal(threaded[name].values, variable.values, err_msg=name)
    assert float(serial["migration_components"].std()) > 0


def test_kernel_workers_are_bounded_by_chunks_and_trace():
    assert kernel_workers(8, 3) == 3
    assert kernel_workers(None, 100) <= MAX_WORKERS
    assert kernel_workers(4, 10, trace=lambda **_: None) == 1
    with pytest.raises(ValueError, match="at least 1"):
        kernel_workers(0, 10)


def test_strong_out_migration_never_makes_a_cell_negative(panel):
    # A 60 % yearly net loss: impossible to meet once cells hit the 80 % cap.
    draws = make_test_draws(panel, 6, seed=1, year_effect_mu=-60.0, attractiveness=0.0)
    projection = project(panel, draws, base_year=BASE, end_year=END, seed=2)
    assert float(projection["population"].min()) >= 0
    applied = projection["net_migration"].isel(year=slice(0, -1))
    requested = projection["net_migration_requested"].isel(year=slice(0, -1))
    # Never takes more than asked (the request is stored in float32: relative tolerance).
    assert bool((applied >= requested - 1e-6 * abs(requested) - 1e-6).all())
    assert float((applied - requested).max()) > 0  # the cap binds somewhere
    population = projection["population"].astype(np.float64).sum(("age", "sex"))
    flows = (projection["births"] - projection["deaths"] + projection["net_migration"])
    assert np.abs(population.diff("year").values - flows.isel(year=slice(0, -1)).values).max() < 0.5


def test_migration_respects_cap_and_meets_feasible_requests():
    rng = np.random.default_rng(0)
    base = rng.gamma(1.0, 20.0, size=(3, 4, 2, 30)).astype(np.float32)
    base[0, 0, :, 20:] = 0.0  # empty cells take nothing
    in_share = rng.random((4, 2, 30))
    in_share /= in_share.sum((1, 2), keepdims=True)
    propensity = rng.gamma(0.5, 2.0, size=(4, 2, 30))
    propensity[1, 0, 5] = 500.0  # one extreme cell forces the capped path
    totals = base.astype(np.float64).sum((2, 3))
    net = np.array(
        [[0.3, -0.2, -0.5, 0.0], [-0.79, 0.1, -0.05, -2.0], [-0.7, -0.01, 0.9, -0.3]]
    ) * totals
    state = base.copy()
    applied, age0 = apply_net_migration(
        net, state, in_share.astype(np.float32), propensity.astype(np.float32), 0.8
    )
    change = state.astype(np.float64) - base
    assert state.min() >= 0
    assert np.all(state >= 0.2 * base - 1e-3)  # nobody loses more than 80 % of a cell
    np.testing.assert_allclose(change.sum((2, 3)), applied, atol=0.01)
    np.testing.assert_allclose(change[..., 0], age0, atol=1e-3)
    feasible = net > -0.8 * totals * 0.999
    np.testing.assert_allclose(applied[feasible], net[feasible], rtol=1e-4, atol=0.05)
    assert np.all(applied[~feasible] >= net[~feasible])
    # Gains follow the in-profile exactly.
    gaining = net[2, 2]
    np.testing.assert_allclose(change[2, 2], gaining * in_share[2], rtol=1e-5, atol=1e-4)


def test_kernel_rejects_inconsistent_inputs():
    inputs = KernelInputs(
        population=np.ones((2, 2, 5)),
        hazard=np.full((3, 2, 5), 0.01),
        newborn_hazard=np.full((3, 2), 0.001),
        asfr=np.zeros((3, 4)),  # wrong number of ages
        female_birth_share=0.49,
        in_share=np.full((2, 2, 5), 0.1),
        out_propensity=np.ones((2, 2, 5)),
    )
    with pytest.raises(ValueError, match="asfr"):
        run_kernel(inputs, 1)


def test_ds_weights_reproduce_ds_percent():
    from vekst.features import ds_percent
    from vekst.projection.migration import ds_linear_weights

    rng = np.random.default_rng(3)
    ages = 106
    employment = np.clip(rng.random((ages, 2)), 0, 1)
    death = rng.random((ages, 2)) * 0.05
    population = rng.gamma(2.0, 30.0, size=(4, ages, 2))
    weights = ds_linear_weights(employment, death, ages)  # (sex, age, 2)
    parts = np.einsum("nas,sak->nk", population, weights)
    np.testing.assert_allclose(
        100 * parts[:, 0] / parts[:, 1], ds_percent(population, employment, death), rtol=1e-10
    )


def test_fertility_and_mortality_deviations_act_on_their_components(panel):
    common = dict(attractiveness=0.0, year_effect_mu=0.0, year_effect_sigma=0.0,
                  sigma_base=0.0, sigma_pop=0.0, beta_mu=0.0, beta_sigma=0.0)
    plain = make_test_draws(panel, 2, seed=1, fert_dev=0.0, mort_dev=0.0, **common)
    fertile = make_test_draws(panel, 2, seed=1, fert_dev=np.log(1.2), mort_dev=0.0, **common)
    deadly = make_test_draws(panel, 2, seed=1, fert_dev=0.0, mort_dev=np.log(1.5), **common)
    run = {name: project(panel, d, base_year=BASE, end_year=BASE + 1)
           for name, d in (("plain", plain), ("fertile", fertile), ("deadly", deadly))}
    first = dict(year=BASE)
    births = {k: v["births"].sel(**first) for k, v in run.items()}
    deaths = {k: v["deaths"].sel(**first) for k, v in run.items()}
    # Births carry Poisson-like noise (the same shocks in both runs, same seed): the
    # deviation scales them up to that noise.
    noise = 4 * np.sqrt(1.2 * births["plain"]) * (np.sqrt(1.2) - 1)
    assert bool((abs(births["fertile"] - 1.2 * births["plain"]) <= noise + 1e-6).all())
    expected = {k: v["expected_births"].sel(**first) for k, v in run.items()}
    np.testing.assert_allclose(expected["fertile"], expected["plain"], rtol=1e-5)
    ratio = (deaths["deadly"] / deaths["plain"]).values
    assert np.all((ratio > 1.45) & (ratio < 1.5))  # 1 - exp(-1.5 h) < 1.5 (1 - exp(-h))
    np.testing.assert_allclose(run["deadly"]["expected_deaths"].sel(**first), deaths["plain"],
                               rtol=1e-4)


def test_projection_ignores_everything_after_the_base_year(panel, draws):
    base = 2017
    changed = panel.copy(deep=True)
    later = dict(year=slice(base, None))
    for name in ("fertility_rate", "mortality_rate", "employed_workplace",
                 "employed_residence", "commuting", "net_migration", "births"):
        changed[name].loc[later] = changed[name].loc[later] * 1.5
    changed["population"].loc[dict(year=slice(base + 1, None))] = 0.0
    a = project(panel, draws, base_year=base, end_year=base + 4, seed=1)
    b = project(changed, draws, base_year=base, end_year=base + 4, seed=1)
    np.testing.assert_array_equal(a["population"].values, b["population"].values)
    assert a.attrs["assumptions"] == b.attrs["assumptions"]


def _old_age_inputs(death_noise):
    """Two places with 400 and 40 people per sex at one old age, hazard 0.2, nothing else."""
    population = np.zeros((2, 2, 5), np.float32)
    population[0, :, 3] = 400.0
    population[1, :, 3] = 40.0
    return KernelInputs(
        population=population,
        hazard=np.full((1, 2, 5), 0.2),
        newborn_hazard=np.zeros((1, 2)),
        asfr=np.zeros((1, 5)),
        female_birth_share=0.5,
        in_share=np.zeros((2, 2, 5)),
        out_propensity=np.zeros((2, 2, 5)),
        death_noise=death_noise,
    )


def test_survivors_are_binomial_around_their_expectation():
    n_draws = 4000
    noise = DeathNoise(seed=1, years=(2023,), first_age=2)
    noisy = run_kernel(_old_age_inputs(noise), n_draws, chunk_size=7)
    q = 1.0 - np.exp(-0.2)
    people = np.array([800.0, 80.0])
    deaths = noisy.deaths[:, 0]
    mean_error = deaths.mean(0) - people * q
    assert np.all(np.abs(mean_error) < 4 * np.sqrt(people * q * (1 - q) / n_draws))
    ratio = deaths.var(0) / (people * q * (1 - q))
    assert np.all((ratio > 0.9) & (ratio < 1.1))  # binomial variance, both sizes
    # Expected deaths stay the expectation, not the draw.
    expected = np.tile(people * q, (n_draws, 1))
    np.testing.assert_allclose(noisy.expected_deaths[:, 0], expected, rtol=1e-5)
    # Without the noise every draw has the expected deaths.
    exact = run_kernel(_old_age_inputs(None), 5)
    np.testing.assert_allclose(exact.deaths[:, 0], np.tile(people * q, (5, 1)), rtol=1e-5)


def test_chance_deaths_of_tiny_old_groups_keep_their_expectation():
    """Groups of a person or two at hazards of 95+ year olds: the cap that keeps a cell
    from losing more people than it has must not take deaths off on average (a capped
    mean-1 log-normal lost 6-30 % of them, and small places' 90+ grew)."""
    n_draws = 20000
    population = np.zeros((3, 2, 4), np.float32)
    population[0, :, 2] = 2.0  # one age in the group: hazard 0.6, q = 0.45
    population[1, :, 2] = 0.5
    population[2, :, 2:] = 0.6  # two ages with different hazards in one group
    hazard = np.zeros((1, 2, 4))
    hazard[..., 2], hazard[..., 3] = 0.6, 1.2
    inputs = KernelInputs(
        population=population,
        hazard=hazard,
        newborn_hazard=np.zeros((1, 2)),
        asfr=np.zeros((1, 4)),
        female_birth_share=0.5,
        in_share=np.zeros((3, 2, 4)),
        out_propensity=np.zeros((3, 2, 4)),
        death_noise=DeathNoise(
            seed=7, years=(2023,), first_age=2, group_width=5, corrected_from=2
        ),
    )
    noisy = run_kernel(inputs, n_draws, chunk_size=500)
    expected = noisy.expected_deaths[0, 0]
    deaths = noisy.deaths[:, 0]
    standard_error = deaths.std(0) / np.sqrt(n_draws)
    assert np.all(np.abs(deaths.mean(0) - expected) < 4 * standard_error + 1e-6)
    assert np.all(deaths.std(0) > 0.1 * np.sqrt(expected))  # still noisy
    # No cell ends below zero or above its own people.
    assert np.all(deaths >= 0) and np.all(deaths <= population.sum((1, 2)) + 1e-4)


def test_capped_factors_keep_mean_one_and_their_order():
    """Groups of a few people at old-age death risks: the factor never lets a group lose
    more people than it has, and still has mean 1; with the correction off it does not."""
    people = np.array([40.0, 8.0, 2.0, 2.0, 0.5, 0.2])
    share = np.array([0.2, 0.25, 0.3, 0.45, 0.45, 0.5])
    n_draws = 20_000
    deaths = np.tile(people * share, (n_draws, 1))
    population = np.tile(people, (n_draws, 1))
    draws = slice(0, n_draws)
    noise = DeathNoise(seed=2, years=(2023,), first_age=0, group_width=1, corrected_from=0)
    factor = noise.factors(draws, 0, deaths, population)
    standard_error = factor.std(0) / np.sqrt(n_draws)
    assert np.all(np.abs(factor.mean(0) - 1.0) < 4 * standard_error)
    assert np.all(factor * share <= 1.0 + 1e-12) and np.all(factor >= 0)
    z = noise.shocks(draws, 0, (len(people),))
    for g in range(len(people)):  # monotone in the shock: common random numbers hold
        assert np.all(np.diff(factor[np.argsort(z[:, g]), g]) >= -1e-12)
    # Variance: the binomial's where the cap leaves room, less where it cannot.
    binomial_sd = np.sqrt(people * share * (1 - share))
    ratio = (factor * people * share).std(0) / binomial_sd
    assert 0.95 < ratio[0] < 1.05 and np.all(ratio > 0.2)
    plain = DeathNoise(seed=2, years=(2023,), first_age=0, group_width=1, corrected_from=99)
    lost = 1.0 - plain.factors(draws, 0, deaths, population).mean(0)
    assert np.all(lost[2:] > 4 * standard_error[2:])  # the small groups lost deaths


def test_death_noise_does_not_depend_on_chunking():
    noise = DeathNoise(seed=4, years=(2023,), first_age=2)
    small = run_kernel(_old_age_inputs(noise), 30, chunk_size=4)
    large = run_kernel(_old_age_inputs(noise), 30, chunk_size=30)
    np.testing.assert_array_equal(small.deaths, large.deaths)
    other = run_kernel(_old_age_inputs(DeathNoise(seed=5, years=(2023,), first_age=2)), 30)
    assert not np.array_equal(other.deaths, large.deaths)


def test_options_object_and_keywords_are_the_same_projection(panel, draws):
    from vekst.projection import ProjectionOptions

    options = ProjectionOptions(base_year=BASE, end_year=END, seed=4, detail="totals")
    by_object = project(panel, draws, options)
    by_keywords = project(panel, draws, base_year=BASE, end_year=END, seed=4, detail="totals")
    np.testing.assert_array_equal(by_object["population_total"], by_keywords["population_total"])
    # A keyword overrides the object's field.
    other = project(panel, draws, options, seed=5)
    assert not np.array_equal(other["population_total"], by_object["population_total"])
    with pytest.raises(TypeError, match="end_yaer"):
        project(panel, draws, end_yaer=2030)


def test_compiled_death_noise_matches_the_group_formula():
    """The compiled pass equals the documented group computation (``DeathNoise.factors``:
    deaths summed per group, one factor per group, each age taking its share)."""
    from vekst.projection.kernel import _noisy_survivors

    rng = np.random.default_rng(2)
    noise = DeathNoise(seed=3, years=(2023, 2024), first_age=4, group_width=3)
    population = rng.uniform(0.0, 60.0, size=(5, 7, 2, 12)).astype(np.float32)
    population[0, 0, 0, 4:7] = 0.0  # an empty group keeps factor 1
    survival = rng.uniform(0.6, 1.0, size=population.shape).astype(np.float32)
    survival[1, 2, 1, 7] = 0.3  # the cell that dies most, but empty: not the cap's
    population[1, 2, 1, 7] = 0.0
    survivors = population * survival
    draws, t = slice(10, 15), 1
    starts = noise.group_starts(12)
    assert starts.tolist() == [4, 7, 10]
    deaths = population.astype(np.float64) - survivors
    sizes = np.diff(np.append(starts, 12))
    group_deaths = np.add.reduceat(deaths[..., 4:], starts - 4, axis=-1)
    group_people = np.add.reduceat(population[..., 4:].astype(np.float64), starts - 4, axis=-1)
    cell_share = np.where(population > 0, deaths / np.maximum(population, 1e-30), 0.0)[..., 4:]
    largest = np.maximum.reduceat(cell_share, starts - 4, axis=-1)
    factor = noise.factors(draws, t, group_deaths, group_people, largest)
    assert np.all(factor * largest <= 1 + 1e-9)  # no cell loses more than it has
    expected = survivors.astype(np.float64)
    expected[..., 4:] = np.maximum(
        population[..., 4:] - deaths[..., 4:] * np.repeat(factor, sizes, axis=-1), 0.0
    )
    noisy = np.empty_like(population)
    _noisy_survivors(population, survival, noise, draws, t, out=noisy)
    np.testing.assert_allclose(noisy, expected, rtol=2e-6, atol=1e-4)
    assert not np.allclose(noisy[..., 4:], survivors[..., 4:])  # the noise did something
    np.testing.assert_array_equal(noisy[..., :4], survivors[..., :4])
    # National survival broadcast over draws and municipalities gives the same as the
    # full-sized array, and the survival array may receive the survivors itself.
    # The caps matter here: every group's is corrected, and some bind.
    capped = DeathNoise(seed=3, years=(2023, 2024), first_age=4, group_width=3, corrected_from=0)
    national = survival[:1, :1]
    broadcast = np.empty_like(population)
    _noisy_survivors(population, national, capped, draws, t, out=broadcast)
    in_place = np.broadcast_to(national, population.shape).copy()
    _noisy_survivors(population, in_place, capped, draws, t, out=in_place)
    np.testing.assert_array_equal(broadcast, in_place)
    uncorrected = np.empty_like(population)
    _noisy_survivors(population, national, noise, draws, t, out=uncorrected)
    assert not np.array_equal(uncorrected, broadcast)
