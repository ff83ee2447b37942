"""Benchmark: 1000-draw national projection with single-year ages into Zarr, beside netCDF.

    python benchmarks/projection_zarr.py                    # embedded panel, 1000 draws, 2040
    python benchmarks/projection_zarr.py --draws 250 --synthetic

Two cases, each in its own Python process so that its peak resident memory
(``ru_maxrss``) is its own:

* ``zarr``: :func:`vekst.projection.zarr_store.project_to_zarr` (single ages streamed to
  the store chunk by chunk), then :func:`~vekst.projection.write_projection_files` reading
  the store lazily for the CSV summaries (what ``vekst project --format zarr`` does).
* ``netcdf``: :func:`~vekst.projection.project` in memory with ``detail="auto"`` (at 1000
  draws this keeps age groups only: single ages would be 5.1 GiB), then
  ``write_projection_files`` to ``projection.nc`` (today's ``vekst project``).

Printed per case: wall time of the projection, of the files (summaries + writing), peak
RSS (before the projection: panel and libraries; after the projection; at the end), bytes
on disk, and the national median in the end year (the two must agree).
Draws come from :func:`~vekst.projection.make_test_draws` (no fit needed).
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


def _panel(synthetic: bool):
    if not synthetic:
        try:
            from vekst import load_default

            return load_default(), "embedded real panel"
        except Exception as error:
            print(f"(embedded panel unavailable: {error}; synthetic panel)", file=sys.stderr)
    from vekst.projection.testing import toy_panel

    return toy_panel(357, (2005, 2022), n_regions=73, seed=1), "synthetic panel"


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_case(args) -> dict:
    """One case; returns timings, memory and sizes as a dict."""
    import numpy as np

    from vekst.projection import make_test_draws, project, write_projection_files
    from vekst.projection.outputs import aggregate

    panel, source = _panel(args.synthetic)
    draws = make_test_draws(panel, args.draws, seed=1)
    options = {"end_year": args.end_year, "seed": 1, "chunk_size": args.chunk}
    # Warm-up: imports and first-call costs are not the projection's.
    project(panel, draws.isel(draw=slice(0, 2)), end_year=int(panel["year"][-1]) + 1)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    folder = Path(tempfile.mkdtemp(prefix="vekst-bench-", dir=args.tmp))
    out = folder / "out"
    try:
        start = time.perf_counter()
        if args.case == "zarr":
            from vekst.projection.zarr_store import project_to_zarr

            staging = folder / "staging.zarr"
            projection = project_to_zarr(panel, draws, staging, **options)
            project_s = time.perf_counter() - start
            rss_projected = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            start = time.perf_counter()
            written = write_projection_files(projection, out, zarr_store=staging)
        else:
            projection = project(panel, draws, detail="auto", **options)
            project_s = time.perf_counter() - start
            rss_projected = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            start = time.perf_counter()
            written = write_projection_files(projection, out)
        files_s = time.perf_counter() - start
        detail = str(projection.attrs["detail"])
        if args.case == "zarr":
            from vekst.projection.zarr_store import open_projection

            projection = open_projection(written["projection"])
        national = aggregate(projection, "nation")
        end_median = float(national["q50"].to_numpy()[-1])
        stored = _size(written["projection"])
        raw = 4 * np.prod([projection.sizes[d] for d in ("draw", "year", "municipality")])
        raw *= projection.sizes["age"] * 2
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "case": args.case,
        "source": source,
        "draws": args.draws,
        "detail": detail,
        "project_s": project_s,
        "files_s": files_s,
        "rss_before_mb": rss_before,
        "rss_projected_mb": rss_projected,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "stored_mb": stored / 2**20,
        "single_age_raw_mb": float(raw) / 2**20,
        "national_end_median": end_median,
        "municipalities": int(panel.sizes["municipality"]),
    }


def _profiled(args) -> dict:
    """``run_case`` under cProfile (main thread: the kernel; the writer thread's time shows
    as waits), the 30 costliest calls by own time and cumulative time to a text file."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    row = profiler.runcall(run_case, args)
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)
    Path(f"{args.profile}.{args.case}.txt").write_text(text.getvalue())
    return row


def _spawn(options: list[str]) -> dict:
    command = [sys.executable, os.path.abspath(__file__), *options]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"case {options} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--end-year", type=int, default=2040)
    parser.add_argument("--chunk", type=int, default=10, help="draws per kernel chunk")
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--tmp", default=None, help="folder for the outputs (default: system tmp)")
    parser.add_argument("--cases", default="zarr,netcdf")
    parser.add_argument(
        "--profile", default=None, help="profile each case; stats to PROFILE.CASE.txt"
    )
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(_profiled(args) if args.profile else run_case(args)))
        return
    common = ["--draws", str(args.draws), "--end-year", str(args.end_year)]
    common += ["--chunk", str(args.chunk)]
    common += ["--synthetic"] if args.synthetic else []
    common += ["--tmp", args.tmp] if args.tmp else []
    common += ["--profile", args.profile] if args.profile else []
    print(f"load average before start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    rows = [_spawn([*common, "--case", case]) for case in args.cases.split(",")]
    first = rows[0]
    print(
        f"data: {first['source']} ({first['municipalities']} municipalities), "
        f"{args.draws} draws to {args.end_year}, kernel chunk {args.chunk}; single ages "
        f"uncompressed would be {first['single_age_raw_mb']:.0f} MB"
    )
    print(
        f"{'case':>7} {'kept by age':>12} {'project s':>10} {'files s':>8} {'total s':>8} "
        f"{'peak RSS MB':>12} {'(before)':>9} {'(projected)':>12} {'on disk MB':>11} "
        f"{'end median':>11}"
    )
    for row in rows:
        kept = {"full": "single", "age_groups": "groups", "totals": "none"}[row["detail"]]
        print(
            f"{row['case']:>7} {kept:>12} {row['project_s']:>10.1f} {row['files_s']:>8.1f} "
            f"{row['project_s'] + row['files_s']:>8.1f} {row['maxrss_mb']:>12.0f} "
            f"{row['rss_before_mb']:>9.0f} {row['rss_projected_mb']:>12.0f} "
            f"{row['stored_mb']:>11.0f} "
            f"{row['national_end_median']:>11.0f}"
        )
    zarr = next((r for r in rows if r["case"] == "zarr"), None)
    if zarr is not None:
        ok = zarr["project_s"] + zarr["files_s"] <= 30 and zarr["maxrss_mb"] <= 2048
        print(
            f"target (zarr, single ages) <= 30 s and <= 2 GB: {'meets' if ok else 'misses'} "
            f"({zarr['project_s'] + zarr['files_s']:.1f} s, {zarr['maxrss_mb']:.0f} MB)"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
