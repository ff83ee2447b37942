"""Fit a tiny simulated panel and print a fingerprint of every posterior draw.

Run as a script by ``tests/test_fit_reproducible.py`` in fresh processes, so that the
draws can be compared across processes, hash seeds and compile caches.
"""

from __future__ import annotations

import hashlib

import numpy as np

from vekst.fit import fit_model
from vekst.models.spec import load_spec
from vekst.simulate import simulate_migration_data


def fingerprint() -> str:
    """SHA-256 of all posterior arrays (sorted by name) of a fixed small fit."""
    data, _ = simulate_migration_data(n_regions=4, municipalities_per_region=4, seed=3)
    result = fit_model(load_spec(), data, draws=60, tune=60, chains=2, seed=11, progress=False)
    digest = hashlib.sha256()
    posterior = result.idata.posterior
    for name in sorted(posterior.data_vars):
        digest.update(str(name).encode())
        digest.update(np.ascontiguousarray(posterior[name].values).tobytes())
    return digest.hexdigest()


def callbacks_loaded_from_disk() -> int:
    """How many of the compiled models' C callbacks numba loaded from its disk cache."""
    from vekst.compile_cache import _COMPILED_CACHE

    return sum(
        callback.cache_hits
        for compiled in _COMPILED_CACHE.values()
        for callback in (compiled.compiled_logp_func, compiled.compiled_expand_func)
    )


if __name__ == "__main__":
    from vekst import graph_cache

    print(f"FINGERPRINT {fingerprint()}")
    print(f"CALLBACKS_FROM_CACHE {callbacks_loaded_from_disk()}")
    print(f"GRAPHS_FROM_CACHE {graph_cache.loaded}")
