"""Benchmark: cost of one log-density gradient of the national joint model, side by side.

Compiles the demo's joint model (housing spec, embedded panel, births block) for nutpie
twice in one process, with the births likelihood summed over years (the default,
``collapse_years=True``) and cell by cell, samples one chain of each at target acceptance
0.9 and prints microseconds per gradient (sampling time / leapfrog steps) and the ratio.
Both forms have the same posterior (``tests/test_fit.py``), so the steps per draw match.

    python benchmarks/gradient_cost.py
    python benchmarks/gradient_cost.py --draws 300 --tune 300
"""

from __future__ import annotations

import argparse
import time

import pymc as pm


def joint_model(collapse_years: bool) -> pm.Model:
    """The demo's joint model with the births likelihood in the given form."""
    from vekst import load_default
    from vekst.models.migration import add_migration_block
    from vekst.models.spec import load_spec
    from vekst.models.vital import add_vital_block
    from vekst.workflow import model_inputs

    spec = load_spec("models/housing.toml")
    migration, births, _ = model_inputs(load_default(), spec)
    coords = migration.coords()
    coords["births_year"] = [int(y) for y in births.years]
    with pm.Model(coords=coords) as model:
        add_migration_block(spec, migration)
        add_vital_block(spec.fertility, births, collapse_years=collapse_years)
    return model


def measure(collapse_years: bool, draws: int, tune: int) -> dict:
    """Compile and sample one chain; timings and steps."""
    import nutpie
    import pytensor

    model = joint_model(collapse_years)
    start = time.perf_counter()
    with pytensor.config.change_flags(numba__fastmath=False):
        compiled = nutpie.compile_pymc_model(model, freeze_model=False)
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    idata = nutpie.sample(
        compiled,
        draws=draws,
        tune=tune,
        chains=1,
        seed=1,
        progress_bar=False,
        save_warmup=True,
        target_accept=0.9,
    )
    sampling_s = time.perf_counter() - start
    steps = int(idata.warmup_sample_stats.n_steps.sum() + idata.sample_stats.n_steps.sum())
    return {
        "compile_s": compile_s,
        "sampling_s": sampling_s,
        "steps": steps,
        "us_per_gradient": sampling_s / steps * 1e6,
        "steps_per_draw": float(idata.sample_stats.n_steps.mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--tune", type=int, default=300)
    args = parser.parse_args()
    results = {
        "births summed over years": measure(True, args.draws, args.tune),
        "births cell by cell": measure(False, args.draws, args.tune),
    }
    print(f"{'births likelihood':<26}{'compile s':>10}{'steps':>8}{'steps/draw':>11}{'us/grad':>9}")
    for name, r in results.items():
        print(
            f"{name:<26}{r['compile_s']:>10.1f}{r['steps']:>8}{r['steps_per_draw']:>11.1f}"
            f"{r['us_per_gradient']:>9.0f}"
        )
    fast, slow = results.values()
    ratio = slow["us_per_gradient"] / fast["us_per_gradient"]
    print(f"gradient cost ratio (cell by cell / summed): {ratio:.2f}")


if __name__ == "__main__":
    main()
