"""The vectorised convergence diagnostics against ArviZ's, quantity by quantity."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from vekst.mcmc_diagnostics import rank_diagnostics


def ar1_chains(phi: float, n_chain: int, n_draw: int, rng: np.random.Generator) -> np.ndarray:
    """``(chain, draw)`` of a stationary AR(1) with unit innovations."""
    out = np.empty((n_chain, n_draw))
    out[:, 0] = rng.standard_normal(n_chain) / np.sqrt(1 - phi**2)
    for t in range(1, n_draw):
        out[:, t] = phi * out[:, t - 1] + rng.standard_normal(n_chain)
    return out


def awkward_draws(n_chain: int = 4, n_draw: int = 400, seed: int = 3) -> np.ndarray:
    """Quantities that exercise every branch: (chain, draw, quantity)."""
    rng = np.random.default_rng(seed)
    columns = [ar1_chains(phi, n_chain, n_draw, rng) for phi in (-0.6, 0.0, 0.5, 0.9, 0.99)]
    stuck = ar1_chains(0.3, n_chain, n_draw, rng) + 3.0 * np.arange(n_chain)[:, None]
    columns.append(stuck)  # chains that never met
    columns.append(np.round(ar1_chains(0.7, n_chain, n_draw, rng)))  # long runs of ties
    columns.append(np.full((n_chain, n_draw), 2.5))  # constant
    with_nan = ar1_chains(0.2, n_chain, n_draw, rng)
    with_nan[1, 7] = np.nan
    columns.append(with_nan)
    columns.append(rng.exponential(size=(n_chain, n_draw)) ** 3)  # heavy right tail
    return np.stack(columns, axis=-1)


def arviz_values(draws: np.ndarray) -> dict[str, np.ndarray]:
    data = {"x": draws}
    return {
        "rhat": np.asarray(az.rhat(data)["x"]),
        "ess_bulk": np.asarray(az.ess(data, method="bulk")["x"]),
        "ess_tail": np.asarray(az.ess(data, method="tail")["x"]),
    }


@pytest.mark.parametrize(("n_chain", "n_draw"), [(4, 400), (2, 101), (3, 9)])
def test_diagnostics_equal_arviz_quantity_by_quantity(n_chain, n_draw):
    draws = awkward_draws(n_chain, n_draw)
    expected = arviz_values(draws)
    got = rank_diagnostics(draws)
    for name, reference in expected.items():
        np.testing.assert_array_equal(np.isnan(got[name]), np.isnan(reference), err_msg=name)
        np.testing.assert_allclose(got[name], reference, rtol=1e-10, err_msg=name)
    # The unmixed quantity is flagged, the constant one has no R-hat, the NaN one nothing.
    assert got["rhat"][5] > 1.5
    assert np.isnan(got["rhat"][7]) and np.isnan(got["ess_bulk"][8])


def test_many_quantities_in_blocks_and_threads_equal_arviz():
    """More quantities than one block (256): the pieces are put back in order."""
    rng = np.random.default_rng(11)
    phis = rng.uniform(-0.5, 0.97, size=300)
    draws = np.stack([ar1_chains(phi, 4, 200, rng) for phi in phis], axis=-1)
    expected = arviz_values(draws)
    got = rank_diagnostics(draws)
    for name, reference in expected.items():
        np.testing.assert_allclose(got[name], reference, rtol=1e-10, err_msg=name)


def test_bulk_ess_of_ar1_chains_matches_theory():
    """ESS of a stationary AR(1) is about N (1 - phi) / (1 + phi)."""
    rng = np.random.default_rng(5)
    n_chain, n_draw = 4, 4000
    for phi in (0.0, 0.5, 0.8):
        draws = np.stack([ar1_chains(phi, n_chain, n_draw, rng) for _ in range(20)], axis=-1)
        theory = n_chain * n_draw * (1 - phi) / (1 + phi)
        ratio = np.median(rank_diagnostics(draws)["ess_bulk"]) / theory
        assert 0.85 < ratio < 1.15, (phi, ratio)


def test_no_rhat_from_one_chain_and_nothing_from_three_draws():
    rng = np.random.default_rng(1)
    one_chain = rng.standard_normal((1, 100, 3))
    assert np.isnan(rank_diagnostics(one_chain)["rhat"]).all()
    assert np.isnan(np.asarray(az.rhat({"x": one_chain})["x"])).all()
    assert np.isfinite(rank_diagnostics(one_chain)["ess_bulk"]).all()
    three = rank_diagnostics(rng.standard_normal((4, 3, 2)))
    assert all(np.isnan(v).all() for v in three.values())
    assert all(v.shape == (0,) for v in rank_diagnostics(np.zeros((4, 100, 0))).values())
