"""Benchmark: how projection and fit cost grow from 357 to 3,570 units (sub-municipal areas).

    python benchmarks/scaling.py                          # projections at 357, 1000, 3570
    python benchmarks/scaling.py --draws 250 --fit        # and fits at 357 and 1000
    python benchmarks/scaling.py --units 357,1000 --fit-draws 100

Every case runs in its own Python process, so its peak resident memory (``ru_maxrss``) is
its own; the memory after building the inputs is printed beside it.

Projection: :func:`vekst.projection.testing.toy_panel` with ``N`` units in 73 regions and
the national population held fixed (units are ``357 / N`` times the size of a
municipality: 3,570 units are ten areas per municipality), ``--draws`` posterior draws
from :func:`~vekst.projection.make_test_draws`, projected to ``--end-year`` with single
ages into Zarr (:func:`~vekst.projection.zarr_store.project_to_zarr`), then summarised
(population and age-group CSVs read the store lazily).

Fit (``--fit``): :func:`vekst.models.simulate.simulate_migration_data` with the same
grouping (ten units per region at 1,000 and 3,570; 51 regions of 7 at 357), the default
spec's migration block only, ``--fit-draws`` draws after as many tuning steps, 2 chains;
wall time includes compilation.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: National population held fixed across unit counts (357 toy municipalities of 3000).
NATIONAL_SCALE = 357 * 3000.0


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def projection_case(args) -> dict:
    """Project ``args.units`` simulated units into Zarr; timings and memory."""
    from vekst.projection import make_test_draws, project, write_projection_files
    from vekst.projection.testing import toy_panel
    from vekst.projection.zarr_store import project_to_zarr

    start = time.perf_counter()
    panel = toy_panel(
        args.units, (2005, 2022), n_regions=73, seed=1, size=NATIONAL_SCALE / args.units
    )
    draws = make_test_draws(panel, args.draws, seed=1)
    build_s = time.perf_counter() - start
    # Warm-up on a few units: imports and first-call costs are not the projection's.
    small = panel.isel(municipality=slice(0, 5))
    project(small, make_test_draws(small, 2, seed=1), end_year=int(panel["year"][-1]) + 1)
    rss_inputs = _rss_mb()
    folder = Path(tempfile.mkdtemp(prefix="vekst-scaling-", dir=args.tmp))
    try:
        start = time.perf_counter()
        store = folder / "staging.zarr"
        projection = project_to_zarr(
            panel, draws, store, end_year=args.end_year, seed=1, chunk_size=10
        )
        project_s = time.perf_counter() - start
        start = time.perf_counter()
        written = write_projection_files(projection, folder / "out", zarr_store=store)
        files_s = time.perf_counter() - start
        stored = sum(p.stat().st_size for p in written["projection"].rglob("*") if p.is_file())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "kind": "projection",
        "units": args.units,
        "draws": args.draws,
        "build_s": build_s,
        "project_s": project_s,
        "files_s": files_s,
        "rss_inputs_mb": rss_inputs,
        "maxrss_mb": _rss_mb(),
        "stored_mb": stored / 2**20,
    }


def fit_case(args) -> dict:
    """Fit the migration model on ``args.units`` simulated units; wall time and memory."""
    from vekst.models.simulate import simulate_migration_data

    from vekst.fit import fit_model
    from vekst.models.spec import load_spec
    from vekst.recovery import migration_only

    per_region = 7 if args.units % 10 else 10
    start = time.perf_counter()
    data, _ = simulate_migration_data(
        n_regions=args.units // per_region,
        municipalities_per_region=per_region,
        years=range(2005, 2022),
        seed=1,
    )
    spec = migration_only(load_spec())
    rss_inputs = _rss_mb()
    result = fit_model(
        spec, data, draws=args.fit_draws, tune=args.fit_draws, chains=2, seed=1, progress=False
    )
    wall = time.perf_counter() - start
    diagnostics = result.diagnostics
    return {
        "kind": "fit",
        "units": args.units,
        "draws": args.fit_draws,
        "wall_s": wall,
        "timings": {k: float(v) for k, v in result.timings.items()},
        "rss_inputs_mb": rss_inputs,
        "maxrss_mb": _rss_mb(),
        "divergences": int(diagnostics.divergences),
    }


def _spawn(options: list[str]) -> dict:
    command = [sys.executable, os.path.abspath(__file__), *options]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1:], "options": options,
                "elapsed_s": time.perf_counter() - started}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _growth(rows: list[dict], key: str) -> str:
    """Cost per unit relative to the smallest panel (1.0 = linear growth)."""
    base = rows[0]
    return ", ".join(
        f"{r['units']}: {(r[key] / r['units']) / (base[key] / base['units']):.2f}" for r in rows
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", default="357,1000,3570")
    parser.add_argument("--draws", type=int, default=250, help="projection draws")
    parser.add_argument("--end-year", type=int, default=2040)
    parser.add_argument("--fit", action="store_true", help="also fit at --fit-units")
    parser.add_argument("--fit-units", default="357,1000")
    parser.add_argument("--fit-draws", type=int, default=100)
    parser.add_argument("--tmp", default=None)
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        args.units = args.n
        row = projection_case(args) if args.case == "projection" else fit_case(args)
        print(json.dumps(row))
        return
    common = ["--draws", str(args.draws), "--end-year", str(args.end_year)]
    common += ["--fit-draws", str(args.fit_draws)] + (["--tmp", args.tmp] if args.tmp else [])
    print(f"load average before start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    projections = []
    for n in [int(u) for u in args.units.split(",")]:
        row = _spawn([*common, "--case", "projection", "--n", str(n)])
        print(json.dumps(row), flush=True)
        if "error" not in row:
            projections.append(row)
    print(f"\nprojection: {args.draws} draws to {args.end_year}, single ages into Zarr")
    print(
        f"{'units':>6} {'inputs s':>9} {'project s':>10} {'files s':>8} {'RSS inputs MB':>14} "
        f"{'peak RSS MB':>12} {'on disk MB':>11}"
    )
    for r in projections:
        print(
            f"{r['units']:>6} {r['build_s']:>9.1f} {r['project_s']:>10.1f} {r['files_s']:>8.1f} "
            f"{r['rss_inputs_mb']:>14.0f} {r['maxrss_mb']:>12.0f} {r['stored_mb']:>11.0f}"
        )
    if len(projections) > 1:
        print(f"projection time per unit relative to {projections[0]['units']}: "
              f"{_growth(projections, 'project_s')}")
    if args.fit:
        fits = []
        for n in [int(u) for u in args.fit_units.split(",")]:
            row = _spawn([*common, "--case", "fit", "--n", str(n)])
            print(json.dumps(row), flush=True)
            if "error" not in row:
                fits.append(row)
        print(f"\nfit: migration block, {args.fit_draws} tune + {args.fit_draws} draws, 2 chains")
        print(f"{'units':>6} {'wall s':>8} {'peak RSS MB':>12} {'divergences':>12}  timings")
        for r in fits:
            timings = ", ".join(f"{k} {v:.0f}" for k, v in r["timings"].items())
            print(f"{r['units']:>6} {r['wall_s']:>8.0f} {r['maxrss_mb']:>12.0f} "
                  f"{r['divergences']:>12}  {timings}")
        if len(fits) > 1:
            print(f"fit time per unit relative to {fits[0]['units']}: {_growth(fits, 'wall_s')}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
