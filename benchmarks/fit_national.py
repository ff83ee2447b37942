"""Benchmark: the national migration model with nutpie vs PyMC's default NUTS, side by side.

Prints wall time (compile and sampling separately), min bulk ESS, ESS/s and their ratio.

    python benchmarks/fit_national.py                    # embedded real data
    python benchmarks/fit_national.py --simulated        # national-size simulated panel
    python benchmarks/fit_national.py --pymc-draws 300   # shorter PyMC run (ESS/s still comparable)

PyMC's NUTS is run with fewer draws by default because it is an order of magnitude slower
here; ESS per second is the comparable figure.
"""

from __future__ import annotations

import argparse
import time

import arviz as az
import numpy as np
import pymc as pm

from vekst.fit import diagnose, fit_model
from vekst.models.data import migration_data
from vekst.models.migration import build_migration_model
from vekst.models.simulate import simulate_migration_data
from vekst.models.spec import load_spec


def _data(simulated: bool, spec):
    if simulated:
        data, _ = simulate_migration_data(
            n_regions=160, municipalities_per_region=2, years=range(2005, 2022), seed=1
        )
        return data
    from vekst import load_default

    return migration_data(load_default(), spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--simulated", action="store_true")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--pymc-draws", type=int, default=300)
    parser.add_argument("--skip-pymc", action="store_true")
    args = parser.parse_args()

    spec = load_spec()
    data = _data(args.simulated, spec)
    print(
        f"data: {len(data.municipalities)} municipalities x {len(data.years)} years, "
        f"{len(data.covariates)} covariates"
    )
    # Compile cost only: fit once with nutpie's compile, then the timed run reuses nothing.
    result = fit_model(
        spec, data, draws=args.draws, tune=args.tune, chains=args.chains, seed=1, progress=False
    )
    d = result.diagnostics
    nutpie_wall = result.timings["compile_s"] + result.timings["sampling_s"]
    nutpie_ess_s = d.ess_bulk_min / result.timings["sampling_s"]
    print(
        f"nutpie: compile {result.timings['compile_s']:.1f} s, sampling "
        f"{result.timings['sampling_s']:.1f} s, wall {nutpie_wall:.1f} s, R-hat max "
        f"{d.rhat_max:.3f}, min bulk ESS {d.ess_bulk_min:.0f} ({d.worst['ess_bulk']}), "
        f"divergences {d.divergences}, ESS/s (sampling) {nutpie_ess_s:.1f}, "
        f"ESS/s (wall) {d.ess_bulk_min / nutpie_wall:.1f}"
    )
    if args.skip_pymc:
        return
    model = build_migration_model(spec, data)
    start = time.perf_counter()
    with model:
        idata = pm.sample(
            draws=args.pymc_draws,
            tune=args.pymc_draws,
            chains=args.chains,
            cores=2,
            random_seed=1,
            progressbar=False,
            compute_convergence_checks=False,
        )
    pymc_wall = time.perf_counter() - start
    pd_ = diagnose(idata)
    pymc_ess_s = pd_.ess_bulk_min / pymc_wall
    print(
        f"pymc NUTS ({args.pymc_draws}+{args.pymc_draws}): wall {pymc_wall:.1f} s, min bulk ESS "
        f"{pd_.ess_bulk_min:.0f}, ESS/s (wall) {pymc_ess_s:.2f}"
    )
    print(
        f"ratio nutpie/pymc ESS/s (wall, both including compilation): "
        f"{(d.ess_bulk_min / nutpie_wall) / pymc_ess_s:.1f}x"
    )
    summary = az.summary(result.idata, var_names=["beta_mu"], kind="stats")
    print(summary.to_string())
    np.set_printoptions(precision=3)


if __name__ == "__main__":
    main()
