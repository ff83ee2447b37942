"""nutpie's compiled models, cached in the process by what is compiled into them.

Compiling the joint model costs tens of seconds; a second fit of a panel with the same
structure (spec, shapes, region membership, observed cells) reuses the compiled model with
the new panel's data and coordinates. Across processes, PyTensor's numba functions and the
C callbacks around them (:mod:`vekst.nutpie_callbacks`) load from the on-disk cache, and
so do the rewritten graphs (:mod:`vekst.graph_cache`): a second process skips PyTensor's
graph rewrites (~10 s for the national model).
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pymc as pm

from vekst.models.data import MigrationData, VitalData
from vekst.models.spec import ModelSpec
from vekst.nutpie_callbacks import compile_cached, with_shared_data

__all__ = ["compile_key", "compile_nutpie"]

_COMPILED_CACHE: dict[tuple, object] = {}


def compile_nutpie(model: pm.Model, key: tuple) -> tuple[object, bool]:
    """Compile ``model`` for nutpie, or reuse a compiled model of the same structure with
    this model's data and coordinates.

    numba's fastmath flags are switched off for the compile: with them, LLVM may
    reassociate floating-point sums differently when a function is compiled fresh
    (inlined into nutpie's C callback) than when it is loaded from the on-disk cache, so
    the same seed gave other draws on a cold cache than on a warm one (measured: the
    log-density gradient differed in the last bits, and the chains drifted apart). Without
    fastmath the gradient is bit-identical cold and warm, and no slower here.
    """
    import nutpie
    import pandas as pd
    import pytensor

    from vekst.graph_cache import graph_cache_path

    compiled = _COMPILED_CACHE.get(key)
    if compiled is None:
        with pytensor.config.change_flags(numba__fastmath=False):
            compiled = compile_cached(model, graph_cache_path(key))
            if compiled is None:
                compiled = nutpie.compile_pymc_model(model, freeze_model=False)
        _COMPILED_CACHE[key] = compiled
        return compiled, False
    data = {var.name: np.asarray(var.get_value()) for var in model.data_vars}
    if _has_cached_callbacks(compiled):
        reused = with_shared_data(compiled, data)
    else:
        reused = compiled.with_data(**data)
    # nutpie labels the posterior with the coords it saw at compile time; a panel of the
    # same shape with municipalities in another order must get its own labels.
    coords = dict(reused.coords or {})
    coords.update({name: pd.Index(values) for name, values in model.coords.items()})
    return dataclasses.replace(reused, _coords=coords), True


def _has_cached_callbacks(compiled) -> bool:
    """Whether ``compiled`` came from :func:`vekst.nutpie_callbacks.compile_cached`, whose
    pointer array has its own layout (nutpie's ``with_data`` would misread it)."""
    return np.asarray(compiled.user_data).dtype == np.uint64


def compile_key(
    spec: ModelSpec,
    model: pm.Model,
    migration: MigrationData,
    births: VitalData | None,
    deaths: VitalData | None,
) -> tuple:
    """What a compiled model depends on besides its pm.Data: the spec, the data shapes and
    the structure compiled in as constants (region and county membership, which cells are
    observed, which covariates are available)."""
    shapes = tuple((var.name, tuple(np.shape(var.get_value()))) for var in model.data_vars)
    structure = hashlib.sha256()
    for array in (
        migration.region_index(),
        migration.county_index(),
        migration.observed,
        migration.x_available,
        migration.years,
    ):
        structure.update(np.ascontiguousarray(array).tobytes())
    for vital in (births, deaths):
        if vital is not None:
            structure.update(np.ascontiguousarray(vital.region_index()).tobytes())
            structure.update(np.ascontiguousarray(vital.years).tobytes())
    return (spec.hash, shapes, structure.hexdigest())
