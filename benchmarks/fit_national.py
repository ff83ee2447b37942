"""Benchmark: the national fit, cold and warm, against PyMC's default NUTS, in one run.

Each nutpie fit runs in a fresh process (as ``vekst fit`` does), first with an empty
PyTensor/numba cache (cold), then again with the cache it left (warm). PyMC's own NUTS
and, when ``jax`` is installed, numpyro follow on the same model and data. Printed side by
side: wall time (compile and sampling apart), worst-parameter bulk ESS and ESS/s, and the
ratio of nutpie's ESS/s (wall, compile included) to each other sampler's.

    python benchmarks/fit_national.py                    # embedded data, joint model
    python benchmarks/fit_national.py --simulated        # national-size simulated panel
    python benchmarks/fit_national.py --pymc-draws 300   # shorter PyMC run (ESS/s comparable)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path


def _inputs(simulated: bool):
    from vekst.models.spec import load_spec

    spec = load_spec()
    if simulated:
        from vekst.simulate import simulate_migration_data

        data, _ = simulate_migration_data(
            n_regions=160, municipalities_per_region=2, years=range(2005, 2022), seed=1
        )
        return spec, data, None, None
    from vekst import load_default
    from vekst.workflow import model_inputs

    return (spec, *model_inputs(load_default(), spec))


def child(args: argparse.Namespace) -> None:
    """One fit in this process; prints a JSON line with timings and diagnostics."""
    from vekst.fit import fit_model

    started = time.perf_counter()
    spec, migration, births, deaths = _inputs(args.simulated)
    prepared = time.perf_counter() - started
    draws = args.draws if args.sampler == "nutpie" else args.pymc_draws
    result = fit_model(
        spec,
        migration,
        births,
        deaths,
        draws=draws,
        tune=draws if args.sampler != "nutpie" else args.tune,
        chains=args.chains,
        seed=args.seed,
        sampler=args.sampler,
        target_accept=args.target_accept,
        progress=False,
    )
    d = result.diagnostics
    report = {
        "sampler": args.sampler,
        "wall_s": time.perf_counter() - started,
        "prepare_s": prepared,
        **result.timings,
        "ess_bulk_min": d.ess_bulk_min,
        "worst": d.worst.get("ess_bulk", ""),
        "rhat_max": d.rhat_max,
        "divergences": d.divergences,
    }
    print("RESULT " + json.dumps(report))


def _run_child(args, sampler: str, compiledir: Path) -> dict:
    env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={compiledir}")
    command = [
        sys.executable,
        __file__,
        "--child",
        "--sampler",
        sampler,
        *(["--simulated"] if args.simulated else []),
        *("--draws", str(args.draws), "--tune", str(args.tune)),
        *("--chains", str(args.chains), "--pymc-draws", str(args.pymc_draws)),
        *("--seed", str(args.seed), "--target-accept", str(args.target_accept)),
    ]
    if sampler == "numpyro":
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.chains}"
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{sampler} fit failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    """Parse options; run the child fit or the whole comparison."""
    from vekst.commands.ui import FIT_DRAWS, FIT_TARGET_ACCEPT, FIT_TUNE

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--simulated", action="store_true")
    parser.add_argument("--draws", type=int, default=FIT_DRAWS)
    parser.add_argument("--tune", type=int, default=FIT_TUNE)
    parser.add_argument("--target-accept", type=float, default=FIT_TARGET_ACCEPT)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--pymc-draws", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20240101)
    parser.add_argument("--skip-pymc", action="store_true")
    parser.add_argument("--sampler", default="nutpie", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    runs = []
    with tempfile.TemporaryDirectory(prefix="vekst-bench-") as tmp:
        compiledir = Path(tmp)
        runs.append(("nutpie cold", _run_child(args, "nutpie", compiledir)))
        runs.append(("nutpie warm", _run_child(args, "nutpie", compiledir)))
        if not args.skip_pymc:
            runs.append(("pymc NUTS", _run_child(args, "pymc", compiledir)))
        if find_spec("jax") and find_spec("numpyro"):
            runs.append(("numpyro", _run_child(args, "numpyro", compiledir)))
        else:
            print("numpyro: skipped (install vekst[jax] to compare)")
    warm_rate = runs[1][1]["ess_bulk_min"] / runs[1][1]["wall_s"]
    header = (
        f"{'run':<12} {'wall s':>7} {'compile':>8} {'sampling':>9} {'min ESS':>8} "
        f"{'ESS/s':>7} {'R-hat':>6} {'div':>4}  nutpie-warm ratio  worst"
    )
    print(header)
    for label, r in runs:
        rate = r["ess_bulk_min"] / r["wall_s"]
        compile_s = r.get("compile_s", float("nan"))
        print(
            f"{label:<12} {r['wall_s']:7.1f} {compile_s:8.1f} {r['sampling_s']:9.1f} "
            f"{r['ess_bulk_min']:8.0f} {rate:7.2f} {r['rhat_max']:6.3f} {r['divergences']:4d}"
            f"  {warm_rate / rate:>17.1f}  {r['worst']}"
        )


if __name__ == "__main__":
    main()
