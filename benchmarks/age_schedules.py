"""Out-of-sample check of the migration age schedules and of the oldest ages.

    python benchmarks/age_schedules.py [--fit-before 2015] [--codes 3201,0301,...]

1. **Schedules.** Estimated on the flows before ``--fit-before`` (default 2015: years
   2005-2014), each municipality's realised total net migration of every later year
   (2015-2021) is spread over age and sex by (a) the signed schedule of
   :mod:`vekst.projection.agepattern` (posterior mean, no year noise) and (b) the previous
   gains/losses schedule of :mod:`vekst.projection.schedule`, and compared with the
   realised net migration by the planners' age groups. Conditioning on the realised
   total isolates the age spreading from the error of the total. Printed: mean absolute
   error per age group and year (persons) over all municipalities, and the realised and
   spread flows of a few municipalities.
2. **Projection by age group.** From 1 January ``--origin`` (default 2018) to
   ``origin + 4``, every municipality's total follows the naive baseline (mean rate of
   the last five years, :func:`vekst.evaluate.baselines.naive_draws`), spread over age by
   the gains/losses schedule or by the signed schedule; median absolute percentage error
   by the planners' age groups against the realised stocks (and Bærum's own errors).
3. **Oldest ages.** The national 90+ and 100+ from a projection from 1 January
   ``--fit-before`` (sum of the municipalities, 200 draws of test draws without
   municipal deviations) against what the national rates alone imply (the same
   projection without migration, deterministic) and against the realised stocks.
"""

from __future__ import annotations

import argparse

import numpy as np

GROUPS = ((0, 0), (1, 5), (6, 15), (16, 19), (20, 29), (30, 49), (50, 66), (67, 79),
          (80, 89), (90, 105))


def _group(array: np.ndarray) -> np.ndarray:
    """Sum the last axis (age) and the one before (sex) into :data:`GROUPS`."""
    return np.stack([array[..., lo : hi + 1].sum((-1, -2)) for lo, hi in GROUPS], -1)


def schedules(panel, fit_before: int, codes: list[str]) -> None:
    from vekst.projection.agepattern import estimate_age_pattern
    from vekst.projection.kernel import apply_net_migration
    from vekst.projection.schedule import estimate_migration_schedule

    history = panel.sel(year=panel["year"] <= fit_before)
    pattern = estimate_age_pattern(history, before_year=fit_before)
    old = estimate_migration_schedule(history, before_year=fit_before)
    years = [int(y) for y in panel["year"].values if fit_before <= y < panel["year"].values[-1]]
    net = panel["net_migration"].sel(year=years).transpose("municipality", "year", "sex", "age")
    net = net.values.astype(np.float64)  # (m, t, s, a)
    pop = panel["population"].transpose("municipality", "year", "sex", "age")
    start = pop.sel(year=years).values.astype(np.float64)
    end = pop.sel(year=[y + 1 for y in years]).values.astype(np.float64)
    totals = start.sum((2, 3))
    realised_total = net.sum((2, 3))
    signed = (
        pattern.pattern[:, None] * totals[..., None, None]
        + pattern.profile[:, None] * realised_total[..., None, None]
    )
    # The old schedule spreads the total over the population before migration.
    before = np.maximum(end - net, 0.0)
    spread_old = np.empty_like(net)
    for t in range(len(years)):
        state = before[:, t][None].astype(np.float32).copy()
        original = state.copy()
        apply_net_migration(realised_total[None, :, t], state, old.in_share,
                            old.out_propensity, 0.8)
        spread_old[:, t] = (state.astype(np.float64) - original)[0]
    real_g, new_g, old_g = _group(net), _group(signed), _group(spread_old)
    coverage = _interval_coverage(pattern, totals, realised_total, real_g)
    labels = [f"{lo}-{hi}" if hi > lo else f"{lo}" for lo, hi in GROUPS]
    print(f"\nSchedules estimated on flows before {fit_before}; realised totals of "
          f"{years[0]}-{years[-1]} spread over age; mean absolute error, persons per "
          "municipality and year:")
    print(f"{'age':>8} {'signed':>8} {'gains/losses':>13} {'|realised|':>11}")
    for k, label in enumerate(labels):
        print(f"{label:>8} {np.abs(new_g[..., k] - real_g[..., k]).mean():8.1f} "
              f"{np.abs(old_g[..., k] - real_g[..., k]).mean():13.1f} "
              f"{np.abs(real_g[..., k]).mean():11.1f}")
    print("Share of realised age-group flows (municipality x year) inside the central 80 % "
          "interval of 200 schedule draws with yearly residual patterns:")
    print("  " + ", ".join(f"{label} {100 * c:.0f} %" for label, c in zip(labels, coverage,
                                                                     strict=True)))
    names = dict(zip(panel["municipality"].values.astype(str),
                     panel["name"].values.astype(str), strict=True))
    index = {str(c): i for i, c in enumerate(panel["municipality"].values.astype(str))}
    for code in codes:
        if code not in index:
            continue
        i = index[code]
        print(f"\n{code} {names[code]}: mean per year {years[0]}-{years[-1]} (persons)")
        print(f"{'age':>8} {'realised':>9} {'signed':>8} {'gains/losses':>13}")
        for k, label in enumerate(labels):
            print(f"{label:>8} {real_g[i, :, k].mean():9.0f} {new_g[i, :, k].mean():8.0f} "
                  f"{old_g[i, :, k].mean():13.0f}")


def _interval_coverage(pattern, totals, realised_total, real_g, n_draws: int = 200):
    """Coverage of the 80 % interval of the age-group flows, per group."""
    n_mun, n_years = totals.shape
    draws = pattern.draws(n_draws, n_years, seed=7)
    inside = np.zeros(real_g.shape)
    for m0 in range(0, n_mun, 60):
        rows = slice(m0, min(m0 + 60, n_mun))
        groups = np.empty((n_draws, rows.stop - rows.start, n_years, len(GROUPS)))
        for d0 in range(0, n_draws, 20):
            chunk = slice(d0, d0 + 20)
            profile, schedule = draws.chunk(chunk)
            for t in range(n_years):
                residuals, index = draws.year_noise(chunk, t)
                noise = residuals[np.arange(n_mun)[None], index].reshape(schedule.shape)
                flows = ((schedule + noise) * totals[None, :, t, None, None]
                         + profile * realised_total[None, :, t, None, None])
                groups[chunk, :, t] = _group(flows[:, rows])
        lo, hi = np.quantile(groups, [0.1, 0.9], axis=0)
        real = real_g[rows]
        inside[rows] = (real >= lo) & (real <= hi)
    return inside.mean((0, 1))


def by_age_group(panel, origin: int, horizon: int = 4, code: str = "3201") -> None:
    from vekst.agegroups import AGE_GROUPS, age_group_matrix
    from vekst.evaluate.backtest import truncate_panel
    from vekst.evaluate.baselines import naive_draws
    from vekst.projection import project
    from vekst.projection.schedule import estimate_migration_schedule

    cut = truncate_panel(panel, origin)
    draws = naive_draws(cut, origin, years=5)
    end = origin + horizon
    old = estimate_migration_schedule(cut, before_year=origin)
    runs = {
        "gains/losses": project(cut, draws, base_year=origin, end_year=end, schedule=old,
                                detail="full"),
        "signed": project(cut, draws, base_year=origin, end_year=end, detail="full"),
    }
    matrix = age_group_matrix(panel["age"].values)  # (age, group)
    real = panel["population"].sel(year=end).sum("sex").transpose("municipality", "age")
    real_g = real.values @ matrix
    labels = [label for label, _, _ in AGE_GROUPS]
    errors = {}
    for name, run in runs.items():
        got = run["population"].isel(draw=0).sel(year=end).sum("sex")
        got_g = got.transpose("municipality", "age").values @ matrix
        errors[name] = 100 * (got_g - real_g) / np.maximum(real_g, 1.0)
    print(f"\nFrom 1 January {origin} to {end}, naive totals; median APE % by age group over "
          "all municipalities, and Bærum's error %:")
    index = list(panel["municipality"].values.astype(str)).index(code)
    print(f"{'group':>7} {'gains/losses':>13} {'signed':>8} {'Bærum g/l':>10} {'Bærum signed':>13}")
    for k, label in enumerate(labels):
        print(f"{label:>7} {np.median(np.abs(errors['gains/losses'][:, k])):13.1f} "
              f"{np.median(np.abs(errors['signed'][:, k])):8.1f} "
              f"{errors['gains/losses'][index, k]:10.1f} {errors['signed'][index, k]:13.1f}")


def oldest(panel, fit_before: int, draws: int) -> None:
    from vekst.projection import make_test_draws, project

    end = int(panel["year"].values[-1])
    test = make_test_draws(panel, draws, seed=1, fert_dev=None, mort_dev=None,
                           covariates=["centrality"])
    stochastic = project(panel, test, base_year=fit_before, end_year=end, seed=1,
                         detail="full")
    national = project(panel, None, base_year=fit_before, end_year=end, detail="full")
    real = panel["population"].sel(year=slice(fit_before, end)).sum("municipality")
    print(f"\nNational stocks from 1 January {fit_before} ({draws} draws; 'national' = "
          "national rates only, no migration):")
    print(f"{'year':>6} {'age':>5} {'realised':>9} {'national':>9} {'median':>8} "
          f"{'80 % band':>17}")
    for lo in (90, 100):
        for year in range(fit_before + 1, end + 1):
            sel = dict(year=year, age=slice(lo, None))
            r = float(real.sel(**sel).sum())
            n = float(national["population"].sel(**sel).sum(("municipality", "age", "sex"))[0])
            s = stochastic["population"].sel(**sel).sum(("municipality", "age", "sex")).values
            q10, q50, q90 = np.quantile(s, [0.1, 0.5, 0.9])
            print(f"{year:>6} {lo:>4}+ {r:9.0f} {n:9.0f} {q50:8.0f} {q10:8.0f}-{q90:8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit-before", type=int, default=2015)
    parser.add_argument("--codes", default="3201,0301,5001,3203,1103,4601")
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--origin", type=int, default=2018)
    args = parser.parse_args()
    from vekst import load_default

    panel = load_default()
    schedules(panel, args.fit_before, args.codes.split(","))
    by_age_group(panel, args.origin)
    oldest(panel, args.fit_before, args.draws)


if __name__ == "__main__":
    main()
