"""Benchmark: the projection kernel at national size, and float32 chunked vs float64 whole.

    python benchmarks/projection.py                 # embedded real panel (357 municipalities)
    python benchmarks/projection.py --synthetic     # a synthetic panel of the same size
    python benchmarks/projection.py --draws 1000 --years 25 --chunks 25,100

Every case runs in its own Python process, so the peak resident memory (``ru_maxrss``,
shown beside the resident memory before the projection: panel and libraries) belongs to
that case alone. For the side-by-side comparison ``tracemalloc`` also gives the peak of the
memory allocated during the projection itself (in a second, untimed run: tracing slows
Python code down). Printed per case: wall time of ``project()`` (everything: trend,
schedule, features, kernel, assembling the dataset) after a warm-up call, best of
``--repeat`` (3) runs, of the kernel
alone, the CPU time of the process (less sensitive to other jobs on a shared machine than
wall time), and cells per second (draws x municipalities x 2 sexes x 106 ages x years /
kernel seconds).

The big case keeps totals only (``detail="totals"``): the full single-age array of 1000
draws x 26 years would be 7.9 GB of float32 by itself, which is why ``project`` switches
to age groups above 2 GiB (``detail="auto"``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc


def _panel(synthetic: bool):
    if not synthetic:
        try:
            from vekst import load_default

            return load_default(), "embedded real panel"
        except Exception as error:
            print(f"(embedded panel unavailable: {error}; using a synthetic panel)")
    from vekst.projection.testing import toy_panel

    return toy_panel(357, (2005, 2022), n_regions=73, seed=1), "synthetic panel"


def run_case(args) -> dict:
    """One projection; returns timings and memory as a dict."""
    import importlib

    import numpy as np

    from vekst.projection import make_test_draws
    from vekst.projection.kernel import kernel_workers

    # The package re-exports the function ``project``, which hides the module attribute.
    driver = importlib.import_module("vekst.projection.project")

    panel, source = _panel(args.synthetic)
    draws = make_test_draws(panel, args.draws, seed=1)
    if args.no_mort_dev:
        draws = draws.drop_vars("mort_dev")
    base = int(panel["year"].values[-1])
    kernel_time = {}
    original = driver.run_kernel

    def timed_kernel(*a, **k):
        start = time.perf_counter()
        result = original(*a, **k)
        kernel_time["s"] = time.perf_counter() - start
        return result

    dtype = np.float64 if args.dtype == "float64" else np.float32
    # Warm-up: imports and first-call costs are not the kernel's.
    driver.project(panel, draws.isel(draw=slice(0, 2)), end_year=base + 1, detail="totals")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    driver.run_kernel = timed_kernel
    walls, kernels, cpus = [], [], []
    # The best of a few repeats: the machine is shared, and others' jobs only add time.
    projection = None
    for _ in range(args.repeat):
        projection = None  # so two results never coexist in memory
        start, cpu_start = time.perf_counter(), time.process_time()
        projection = driver.project(
            panel,
            draws,
            end_year=base + args.years,
            seed=1,
            chunk_size=args.chunk,
            detail=args.detail,
            dtype=dtype,
            workers=args.workers or None,
        )
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu_start)
        kernels.append(kernel_time["s"])
    driver.run_kernel = original
    wall, kernel_s = min(walls), min(kernels)
    traced_peak = float("nan")
    if args.traced:
        tracemalloc.start()
        driver.project(panel, draws, end_year=base + args.years, seed=1,
                       chunk_size=args.chunk, detail=args.detail, dtype=dtype)
        traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    cells = args.draws * panel.sizes["municipality"] * 2 * panel.sizes["age"] * args.years
    national = projection["population_total"].isel(year=-1).sum("municipality")
    return {
        "source": source,
        "draws": args.draws,
        "years": args.years,
        "chunk": args.chunk,
        "workers": kernel_workers(args.workers or None, -(-args.draws // args.chunk)),
        "dtype": args.dtype,
        "detail": args.detail,
        "wall_s": wall,
        "kernel_s": kernel_s,
        "walls": walls,
        "cpu_s": min(cpus),
        "traced_peak_mb": traced_peak / 2**20,
        "rss_before_mb": rss_before,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cells": cells,
        "cells_per_s": cells / kernel_s,
        "national_end_median": float(np.median(national.values)),
    }


def _spawn(options: list[str]) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--case", *options]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"case {options} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--years", type=int, default=25)
    parser.add_argument("--chunks", default="10,100", help="chunk sizes of the big case")
    parser.add_argument(
        "--workers-list", default="1,0",
        help="kernel threads of the big case (0 = the default: one per CPU, at most 4)",
    )
    parser.add_argument("--small-draws", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case (best kept)")
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument(
        "--no-mort-dev",
        action="store_true",
        help="draws without mort_dev (as a fit without observed deaths): survival needs no exp",
    )
    parser.add_argument("--case", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--chunk", type=int, default=100, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--detail", default="totals", help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args)))
        return

    common = ["--years", str(args.years), "--repeat", str(args.repeat)]
    common += ["--synthetic"] if args.synthetic else []
    common += ["--no-mort-dev"] if args.no_mort_dev else []
    load = os.getloadavg()[0]
    print(f"load average before start: {load:.1f} on {os.cpu_count()} cores")
    rows = []
    for chunk in [int(c) for c in args.chunks.split(",")]:
        for workers in [int(w) for w in args.workers_list.split(",")]:
            rows.append(_spawn([*common, "--draws", str(args.draws), "--chunk", str(chunk),
                                "--workers", str(workers)]))
    small = str(args.small_draws)
    # The float32/float64 comparison in one thread: it measures the arithmetic.
    f32 = _spawn([*common, "--draws", small, "--chunk", "10", "--traced", "--workers", "1"])
    f64 = _spawn([*common, "--draws", small, "--chunk", small, "--dtype", "float64", "--traced",
                  "--workers", "1"])
    rows += [f32, f64]
    print(
        f"data: {rows[0]['source']}; {args.years} projected years, detail='totals'; "
        f"mort_dev {'absent' if args.no_mort_dev else 'present'}"
    )
    header = (
        f"{'draws':>6} {'chunk':>6} {'threads':>7} {'dtype':>8} {'wall s':>8} {'cpu s':>7} "
        f"{'kernel s':>9} "
        f"{'peak RSS MB':>12} {'(before)':>9} {'traced MB':>10} {'Mcells/s':>9}"
    )
    print(header)
    for row in rows:
        print(
            f"{row['draws']:>6} {row['chunk']:>6} {row['workers']:>7} {row['dtype']:>8} "
            f"{row['wall_s']:>8.2f} "
            f"{row['cpu_s']:>7.2f} "
            f"{row['kernel_s']:>9.2f} {row['maxrss_mb']:>12.0f} {row['rss_before_mb']:>9.0f} "
            f"{row['traced_peak_mb']:>10.0f} {row['cells_per_s'] / 1e6:>9.1f}"
        )
    print(
        f"float32 chunked (10) vs float64 unchunked, {small} draws: kernel "
        f"{f64['kernel_s'] / f32['kernel_s']:.2f}x faster, traced memory "
        f"{f64['traced_peak_mb'] / f32['traced_peak_mb']:.2f}x smaller; national median in "
        "the end year differs by "
        f"{abs(f64['national_end_median'] - f32['national_end_median']):.1f} persons"
    )
    big = rows[: len(rows) - 2]
    for chunk in sorted({row["chunk"] for row in big}):
        same = [row for row in big if row["chunk"] == chunk]
        serial = [row for row in same if row["workers"] == 1]
        for row in same:
            if serial and row["workers"] > 1:
                ratio = serial[0]["wall_s"] / row["wall_s"]
                print(
                    f"chunk {chunk}: {row['workers']} threads {ratio:.2f}x faster than 1 (wall), "
                    f"peak RSS {row['maxrss_mb']:.0f} vs {serial[0]['maxrss_mb']:.0f} MB"
                )
    best = min(big, key=lambda r: r["wall_s"])
    verdict = "meets" if best["wall_s"] <= 10 and best["maxrss_mb"] <= 2048 else "misses"
    print(f"target <= 10 s and <= 2 GB at {args.draws} draws: {verdict} "
          f"(best: chunk {best['chunk']}, {best['wall_s']:.1f} s, {best['maxrss_mb']:.0f} MB)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
