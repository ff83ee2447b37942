"""Attractiveness as a random walk (``attractiveness_walk = true``): the walk's design, the
model's variables, its continuation in the projection and its recovery on a simulated
panel."""

from __future__ import annotations

import itertools

import numpy as np
import pytensor
import pytest

from test_dynamics import N_DRAWS, N_MUN, N_YEARS, _dynamics, _model, _run
from test_dynamics_fit import _spec as dynamics_spec
from vekst.fit import fit_model, projection_draws
from vekst.models.dynamics import (
    persistence_inputs,
    walk_design,
    walk_knots,
    walking_municipalities,
)
from vekst.models.migration import build_migration_model
from vekst.models.spec import SpecError, load_spec, spec_from_dict
from vekst.projection.sources import hold_draws
from vekst.simulate import MigrationTruth, simulate_migration_data


def _spec():
    """The time-structured recovery spec of ``test_dynamics_fit`` with the walk."""
    raw = dynamics_spec().to_dict()
    raw["migration"]["attractiveness_walk"] = True
    raw["migration"].pop("student_t_nu", None)
    return spec_from_dict(raw)


@pytest.mark.parametrize("n_years", [8, 10, 17, 21])
def test_the_walk_at_its_knots_is_a_random_walk_with_unit_yearly_variance(n_years):
    design = walk_design(n_years)
    knots = walk_knots(n_years)
    assert knots[0] == 0 and knots[-1] == n_years - 1
    assert all(0 < b - a <= 4 for a, b in itertools.pairwise(knots))
    # Steps are independent standard normals, so the variance of a difference of two
    # years is the squared norm of the difference of their columns.
    for a, b in itertools.combinations(knots, 2):
        assert np.sum((design[:, b] - design[:, a]) ** 2) == pytest.approx(b - a)
    # Centred over the years: the level it adds to has the meaning of a mean.
    np.testing.assert_allclose(design.sum(axis=1), 0.0, atol=1e-12)
    # Linear between knots: the second difference vanishes inside every segment.
    inside = [t for t in range(1, n_years - 1) if t not in knots]
    second = design[:, 2:] - 2 * design[:, 1:-1] + design[:, :-2]
    np.testing.assert_allclose(second[:, [t - 1 for t in inside]], 0.0, atol=1e-12)


def _panel(years: range):
    data, _ = simulate_migration_data(
        n_regions=6, municipalities_per_region=3, years=years, covariates=("centrality",)
    )
    return data


def test_the_fitted_walk_is_its_design_scaled_by_each_places_sd():
    data = _panel(range(2001, 2011))
    model = build_migration_model(_spec(), data)
    free_name = "attract_walk_z"
    assert model.named_vars_to_dims[free_name] == ("walk_municipality", "walk_step")
    assert model.coords["walk_municipality"] == model.coords["municipality"]
    point = model.initial_point()
    rng = np.random.default_rng(1)
    free = rng.standard_normal(point[free_name].shape)
    point[free_name] = free
    point["attract_walk_sigma_log__"] = np.log(0.3)
    point["attract_walk_slope"] = np.array(0.4)
    graph = model.replace_rvs_by_values([model["attract_walk_sd"], model["attract_walk_last"]])
    values = pytensor.function(model.value_vars, graph, on_unused_input="ignore")(**point)
    scale = 0.3 * np.exp(0.4 * persistence_inputs(data))
    np.testing.assert_allclose(values[0], scale, rtol=1e-10)
    expected_last = scale * (free @ walk_design(10))[:, -1]
    np.testing.assert_allclose(values[1], expected_last, rtol=1e-10)


def _floored_spec(floor):
    raw = _spec().to_dict()
    raw["migration"]["attractiveness_walk_min_population"] = floor
    raw["migration"].pop("student_t_nu", None)
    return spec_from_dict(raw)


def test_a_population_floor_walks_the_large_places_and_holds_the_small_ones():
    data = _panel(range(2001, 2011))
    last = data.population[:, -1]
    floor = float(np.median(last))
    walking = walking_municipalities(data, floor)
    assert 0 < walking.sum() < len(walking)
    np.testing.assert_array_equal(walking, last >= floor)
    model = build_migration_model(_floored_spec(floor), data)
    free_name = "attract_walk_z"
    assert model.coords["walk_municipality"] == tuple(str(m) for m in data.municipalities[walking])
    point = model.initial_point()
    assert point[free_name].shape == (walking.sum(), len(walk_knots(10)) - 1)
    free = np.random.default_rng(2).standard_normal(point[free_name].shape)
    point[free_name] = free
    point["attract_walk_sigma_log__"] = np.log(0.3)
    point["attract_walk_slope"] = np.array(0.4)
    graph = model.replace_rvs_by_values([model["attract_walk_sd"], model["attract_walk_last"]])
    sd, walk_last = pytensor.function(model.value_vars, graph, on_unused_input="ignore")(**point)
    # Sizes are centred over the places that walk: sigma is the sd at their mean size.
    z = persistence_inputs(data)
    scale = 0.3 * np.exp(0.4 * (z - z[walking].mean()))
    np.testing.assert_allclose(sd[walking], scale[walking], rtol=1e-10)
    assert np.exp(np.log(sd[walking]).mean()) == pytest.approx(0.3)
    np.testing.assert_array_equal(sd[~walking], 0.0)
    np.testing.assert_array_equal(walk_last[~walking], 0.0)
    expected_last = scale[walking] * (free @ walk_design(10))[:, -1]
    np.testing.assert_allclose(walk_last[walking], expected_last, rtol=1e-10)


def test_a_floor_no_place_reaches_fits_without_the_walk_and_says_so():
    data = _panel(range(2001, 2011))
    floor = float(data.population[:, -1].max()) + 1.0
    with pytest.warns(UserWarning, match="no municipality has the .* people"):
        model = build_migration_model(_floored_spec(floor), data)
    assert "attract_walk_last" not in model.named_vars


def test_a_panel_shorter_than_eight_years_is_fitted_without_the_walk_and_says_so():
    data = _panel(range(2005, 2012))
    with pytest.warns(UserWarning, match="at least 8 years of net migration; the panel has 7"):
        model = build_migration_model(_spec(), data)
    assert "attract_walk_last" not in model.named_vars


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"attractiveness_walk": "yes"}, "attractiveness_walk must be true or false"),
        (
            {"attractiveness_walk": True, "attractiveness_drift": True},
            "attractiveness_drift .* and attractiveness_walk .* choose one",
        ),
        (
            {
                "attractiveness_walk": True,
                "time_structure": "iid",
                "local_persistence": False,
                "national_immigration": False,
            },
            'attractiveness_walk needs time_structure = "ar1"',
        ),
        (
            {"attractiveness_walk_min_population": 10000},
            "attractiveness_walk_min_population only applies with attractiveness_walk = true",
        ),
        (
            {"attractiveness_walk": True, "attractiveness_walk_min_population": -1},
            "attractiveness_walk_min_population must be a number of people, 0 or more",
        ),
        (
            {"attractiveness_walk": True, "attractiveness_walk_min_population": "10k"},
            "attractiveness_walk_min_population must be a number of people, 0 or more",
        ),
    ],
)
def test_spec_refuses_a_walk_it_cannot_fit_or_project(changes, message):
    raw = load_spec().to_dict()
    raw["migration"].update(changes)
    with pytest.raises(SpecError, match=message):
        spec_from_dict(raw)


def test_a_spec_without_the_walk_keeps_the_hash_fits_were_saved_with():
    spec = load_spec()
    raw = spec.to_dict()
    assert "attractiveness_walk" not in raw["migration"]
    assert "attract_walk_sigma_sd" not in raw["migration"]["priors"]
    assert spec_from_dict(raw).hash == spec.hash
    raw["migration"]["attractiveness_walk"] = True
    walking = spec_from_dict(raw)
    assert walking.hash != spec.hash
    assert walking.to_dict()["migration"]["priors"]["attract_walk_sigma_sd"] == 0.2
    # A walk without a floor keeps the hash it had before the floor existed.
    assert "attractiveness_walk_min_population" not in walking.to_dict()["migration"]
    raw["migration"]["attractiveness_walk_min_population"] = 10000
    floored = spec_from_dict(raw)
    assert floored.hash not in (spec.hash, walking.hash)
    assert spec_from_dict(floored.to_dict()).hash == floored.hash


def _walking_dynamics(sd, last):
    return _dynamics(
        np.array([0.0, 0.0]),
        np.array([1e-9, 1e-9]),
        [0.0, 2.0],
        [0.0, 2.0],
        walk_sd=np.tile(np.asarray(sd, dtype=float), (N_DRAWS, 1)),
        walk_last=np.tile(np.asarray(last, dtype=float), (N_DRAWS, 1)),
    )


def test_projected_attractiveness_walks_on_from_its_last_level_with_variance_growing_as_h():
    sd, last = np.array([0.1, 0.3, 0.5]), np.array([0.4, -0.2, 0.0])
    model = _model(_walking_dynamics(sd, last), record=True)
    rates = _run(model)
    # The helper's municipalities have centrality -0.2 / 0 / 0.3 (x 2.0) and nothing else.
    walk = rates - 2.0 * np.array([-0.2, 0.0, 0.3])[None, None, :]
    h = np.arange(1, N_YEARS + 1)[:, None]
    expected_var = sd[None, :] ** 2 * h
    se = np.sqrt(expected_var / N_DRAWS)
    assert np.all(np.abs(walk.mean(0) - last[None, :]) < 4 * se)
    ratio = walk.var(0) / expected_var
    assert np.all(np.abs(ratio - 1) < 0.1), ratio
    # Booked to attractiveness, so the decomposition shows attractiveness moving.
    components = model.components[:, :N_YEARS, :, :]
    from vekst.projection.migration import COMPONENTS

    moving = components[..., COMPONENTS.index("attractiveness")]
    np.testing.assert_allclose(moving, walk, atol=1e-4)


def test_holding_local_shocks_keeps_attractiveness_at_its_last_fitted_level():
    import xarray as xr

    draws = xr.Dataset(
        {
            "attract_walk_sd": (("draw", "municipality"), np.full((4, N_MUN), 0.3)),
            "sigma_base": ("draw", np.full(4, 0.2)),
        }
    )
    held = hold_draws(draws, frozenset({"local_shocks"}))
    assert float(abs(held["attract_walk_sd"]).max()) == 0.0
    rates = _run(_model(_walking_dynamics(np.zeros(N_MUN), [0.4, -0.2, 0.0])))
    walk = rates - 2.0 * np.array([-0.2, 0.0, 0.3])[None, None, :]
    np.testing.assert_allclose(walk, np.broadcast_to([0.4, -0.2, 0.0], walk.shape), atol=1e-4)


def _simulated_walk(seed: int, **walk) -> tuple:
    """A simulated panel of 80 places x 21 years whose attractiveness walks, and its truth."""
    truth = MigrationTruth(
        rho={"national_net_migration": 0.8, "year_effect": 0.8, "centrality": 0.7},
        sigma_pop=0.8,
        **walk,
    )
    return simulate_migration_data(
        n_regions=20,
        municipalities_per_region=4,
        years=range(2001, 2022),
        covariates=("centrality",),
        truth=truth,
        seed=seed,
    )


def _fit_walk(spec, data, seed: int):
    """The short sampler run of the recovery tests; at most 2 divergent transitions."""
    result = fit_model(spec, data, draws=400, tune=600, chains=2, seed=seed, progress=False)
    assert result.diagnostics.divergences <= 2
    return result


def _assert_inside(values: np.ndarray, truth: float) -> None:
    low, high = np.quantile(values, [0.03, 0.97])
    assert low <= truth <= high, (low, high)


def _last_level_coverage(last: np.ndarray, true_last: np.ndarray) -> float:
    """Share of places whose true last level lies in the 90 % interval of ``last``
    (``(chain, draw, place)``), after checking that the means follow the truth."""
    assert np.corrcoef(last.mean(axis=(0, 1)), true_last)[0, 1] > 0.6
    low, high = np.quantile(last, [0.05, 0.95], axis=(0, 1))
    return float(np.mean((low <= true_last) & (true_last <= high)))


@pytest.mark.slow
def test_the_attractiveness_walk_is_recovered_on_a_simulated_panel():
    data, truth = _simulated_walk(4, walk_sigma=0.25)
    result = _fit_walk(_spec(), data, seed=4)
    post = result.idata.posterior
    _assert_inside(post["attract_walk_sigma"].values, 0.25)
    _assert_inside(post["attract_walk_slope"].values, 0.0)
    # The last year's level: what the projection starts from.
    last = post["attract_walk_last"].transpose("chain", "draw", "municipality").values
    covered = _last_level_coverage(last, truth.walk[:, -1])
    # 80 municipalities at 90 %: binomial sd 3.4 points.
    assert 0.78 <= covered <= 0.99, covered
    draws = projection_draws(result.idata)
    assert draws["attract_walk_sd"].dims == ("draw", "municipality")
    assert "attract_walk_last" in draws


@pytest.mark.slow
def test_a_walk_for_the_larger_places_only_is_recovered_and_the_others_held():
    unwalked, _ = _simulated_walk(5)
    floor = float(np.median(unwalked.population[:, -1]))
    data, truth = _simulated_walk(5, walk_sigma=0.3, walk_min_population=floor)
    walking = data.population[:, -1] >= floor
    assert 30 <= walking.sum() <= 50
    np.testing.assert_array_equal(truth.walk[~walking], 0.0)
    post = _fit_walk(_floored_spec(floor), data, seed=5).idata.posterior
    _assert_inside(post["attract_walk_sigma"].values, 0.3)
    last = post["attract_walk_last"].transpose("chain", "draw", "municipality").values
    np.testing.assert_array_equal(last[..., ~walking], 0.0)
    covered = _last_level_coverage(last[..., walking], truth.walk[walking, -1])
    # About 40 places at 90 %: binomial sd 4.7 points.
    assert 0.75 <= covered <= 1.0, covered


def test_fit_summary_names_the_places_furthest_from_their_mean_attractiveness():
    import xarray as xr

    from vekst.commands.fit import attractiveness_walk_summary

    rng = np.random.default_rng(3)
    codes, last = ["0301", "3029", "4627", "1103"], np.array([-0.69, 1.22, -0.05, 0.30])
    shape = (2, 300)
    posterior = xr.Dataset(
        {
            "attract_walk_sigma": (("chain", "draw"), rng.uniform(0.10, 0.12, shape)),
            "attract_walk_sd": (
                ("chain", "draw", "municipality"),
                np.broadcast_to([0.25, 0.2, 0.15, 0.2], (*shape, 4)),
            ),
            "attract_walk_last": (
                ("chain", "draw", "municipality"),
                last + rng.normal(0.0, 0.01, (*shape, 4)),
            ),
        },
        coords={"municipality": codes, "year": [2005, 2021]},
    )
    names = {"0301": "Oslo", "3029": "Lørenskog", "4627": "Askøy"}
    text = attractiveness_walk_summary(posterior, names, n_largest=3)
    expected = "furthest from their 2005-2021 mean in 2021: Lørenskog +1.22, Oslo -0.69, 1103 +0.30"
    assert expected in text
    assert "yearly sd 0.11" in text and "0.150-0.250 by size" in text
    assert attractiveness_walk_summary(posterior.drop_vars("attract_walk_last")) is None
    assert "at the mean size," in text

    # With a population floor the held places (sd 0) are left out of the range.
    held = xr.DataArray([1, 1, 0, 1], dims="municipality")
    floored = posterior.assign(attract_walk_sd=posterior["attract_walk_sd"] * held)
    text = attractiveness_walk_summary(floored, names, n_largest=3)
    assert "at the mean size of the 3 of 4 places that walk, 0.200-0.250 by size" in text
