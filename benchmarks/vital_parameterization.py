"""Benchmark: centred, partially centred (``auto``) and non-centred fertility deviations.

Simulates births for 96 municipalities in 12 regions over 8 years, with expected births
per year log-uniform between 1 and 400 (many small municipalities, as in Norway), and fits
the vital block alone with each parameterisation and three seeds.

    python benchmarks/vital_parameterization.py centered auto non_centered
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace

import arviz as az
import numpy as np
import nutpie
import pytensor

from vekst.models.data import VitalData
from vekst.models.spec import load_spec
from vekst.models.vital import build_vital_model, centred_municipalities


def simulated_births(seed: int = 5) -> VitalData:
    """Births with known deviations (region sd 0.07, municipal sd 0.055)."""
    rng = np.random.default_rng(seed)
    n_regions, per_region = 12, 8
    n = n_regions * per_region
    years = np.arange(2014, 2022)
    regions = np.repeat([f"R{i:02d}" for i in range(n_regions)], per_region)
    deviation = np.repeat(rng.normal(0, 0.07, n_regions), per_region) + rng.normal(0, 0.055, n)
    expected = np.exp(rng.uniform(0.0, np.log(400), n))[:, None] * np.ones(len(years))
    observed = rng.poisson(expected * np.exp(deviation)[:, None]).astype(float)
    return VitalData(
        municipalities=np.array([f"{5000 + i}" for i in range(n)]),
        years=years,
        regions=regions,
        observed=observed,
        expected=expected,
        kind="births",
    )


def main(parameterizations: list[str]) -> None:
    """Fit each parameterisation with seeds 1-3 and print divergences, ESS and R-hat."""
    data = simulated_births()
    spec = load_spec()
    for name in parameterizations:
        vspec = replace(spec.fertility, parameterization=name, likelihood="poisson")
        share = centred_municipalities(vspec, data).mean()
        print(f"{name}: {share:.0%} of municipalities centred")
        with pytensor.config.change_flags(numba__fastmath=False):
            compiled = nutpie.compile_pymc_model(build_vital_model(vspec, data))
        for seed in (1, 2, 3):
            start = time.perf_counter()
            idata = nutpie.sample(
                compiled, draws=500, tune=500, chains=4, cores=2, seed=seed, progress_bar=False
            )
            seconds = time.perf_counter() - start
            names = [v for v in idata.posterior.data_vars if not v.endswith(("__", "_z"))]
            ess = az.ess(idata, var_names=names)
            rhat = az.rhat(idata, var_names=names)
            worst = min(names, key=lambda k: float(ess[k].min()))
            low = float(ess[worst].min())
            print(
                f"  seed {seed}: divergences {int(idata.sample_stats.diverging.sum())}, "
                f"min bulk ESS {low:.0f} ({worst}), max R-hat "
                f"{max(float(rhat[k].max()) for k in names):.4f}, ESS/s {low / seconds:.0f}"
            )


if __name__ == "__main__":
    main(sys.argv[1:] or ["centered", "auto", "non_centered"])
