"""nutpie callbacks cached across processes compute what nutpie's own callbacks compute."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor
import pytest

nutpie = pytest.importorskip("nutpie")

from vekst.nutpie_callbacks import compile_cached, with_shared_data  # noqa: E402


def _model(y: np.ndarray, group: np.ndarray) -> pm.Model:
    """Varying intercepts with shared data of two dtypes (float and integer index)."""
    with pm.Model(coords={"group": range(5)}) as model:
        y_data = pm.Data("y", y)
        group_data = pm.Data("group_index", group)
        mu = pm.Normal("mu", 0, 1)
        scale = pm.HalfNormal("scale", 1)
        z = pm.Normal("z", 0, 1, dims="group")
        intercept = pm.Deterministic("intercept", mu + scale * z, dims="group")
        sigma = pm.HalfNormal("sigma", 1)
        pm.Normal("obs", intercept[group_data], sigma, observed=y_data, shape=group_data.shape)
    return model


def _posterior(compiled) -> dict[str, np.ndarray]:
    idata = nutpie.sample(compiled, draws=100, tune=100, chains=2, seed=5, progress_bar=False)
    return {name: idata.posterior[name].values for name in idata.posterior.data_vars}


@pytest.fixture(scope="module")
def compiled_pair():
    rng = np.random.default_rng(0)
    group = rng.integers(0, 5, 120)
    model = _model(rng.normal(0.4 * group, 1.0), group)
    with pytensor.config.change_flags(numba__fastmath=False):
        ours = compile_cached(model)
        theirs = nutpie.compile_pymc_model(model, freeze_model=False)
    return ours, theirs, rng


def test_cached_callbacks_give_nutpies_draws_bit_for_bit(compiled_pair):
    ours, theirs, _ = compiled_pair
    assert ours is not None
    mine, reference = _posterior(ours), _posterior(theirs)
    assert mine.keys() == reference.keys()
    for name in reference:
        np.testing.assert_array_equal(mine[name], reference[name], err_msg=name)


def test_new_data_of_another_length_reaches_the_callbacks(compiled_pair):
    ours, theirs, rng = compiled_pair
    group = rng.integers(0, 5, 80)
    y = rng.normal(3.0 + 0.4 * group, 1.0)
    mine = _posterior(with_shared_data(ours, {"y": y, "group_index": group}))
    reference = _posterior(theirs.with_data(y=y, group_index=group))
    np.testing.assert_array_equal(mine["intercept"], reference["intercept"])
    # The new data moved the posterior: the callbacks did not read the old arrays.
    assert float(mine["mu"].mean()) > 2.0


def test_unknown_or_misshapen_data_is_refused(compiled_pair):
    ours, _, _ = compiled_pair
    with pytest.raises(KeyError, match="unknown shared variable 'rate'"):
        with_shared_data(ours, {"rate": np.ones(3)})
    with pytest.raises(ValueError, match="rank 1, not 2"):
        with_shared_data(ours, {"y": np.ones((3, 2))})


def test_graphs_stored_by_one_model_sample_anothers_data(compiled_pair, tmp_path):
    """Rewritten graphs loaded from disk sample the new model's data, exactly as a fresh
    compile of that model does; a damaged file is compiled anew."""
    from vekst import graph_cache

    _, _, rng = compiled_pair
    path = tmp_path / "graphs.pkl"
    group = rng.integers(0, 5, 120)
    first = _model(rng.normal(0.4 * group, 1.0), group)
    second = _model(rng.normal(2.0 + 0.4 * group, 1.0), group)  # same structure
    with pytensor.config.change_flags(numba__fastmath=False):
        assert compile_cached(first, path) is not None and path.exists()
        before = graph_cache.loaded
        loaded = compile_cached(second, path)
        assert graph_cache.loaded == before + 1
        fresh = compile_cached(second)
    mine, reference = _posterior(loaded), _posterior(fresh)
    for name in reference:
        np.testing.assert_array_equal(mine[name], reference[name], err_msg=name)
    assert float(mine["mu"].mean()) > 1.5  # the second model's data, not the first's
    path.write_bytes(b"not a pickle")
    with pytensor.config.change_flags(numba__fastmath=False):
        again = compile_cached(second, path)
    assert graph_cache.loaded == before + 1 and path.stat().st_size > 100
    np.testing.assert_array_equal(_posterior(again)["mu"], reference["mu"])
