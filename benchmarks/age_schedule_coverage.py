"""Held-out coverage of the migration age schedules' draws, by size class and age group.

    python benchmarks/age_schedule_coverage.py [--origins 2010 2012 2014 2016 2018]

For each origin the schedules are estimated on the flows before it
(:func:`vekst.projection.agepattern.estimate_age_pattern`) and their projection draws
(posterior schedule + yearly residual pattern, as the projection kernel uses them) spread
each municipality's *realised* total net migration of the next four years over age and
sex. Conditioning on the realised total isolates the age spreading from the error of the
total. Printed: the share of realised net migration by planners' age group that falls
inside the draws' 80 % band, by size class and age group, pooled over origins and years;
and the same by origin. 80 % is the claim; a row far from it says where the spread is off.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from vekst.agegroups import AGE_GROUPS, age_group_matrix
from vekst.evaluate.scoring import size_class


def coverage(panel, origins: list[int], n_draws: int = 400, horizon: int = 4) -> pd.DataFrame:
    """One row per origin, held-out year, municipality and age group: inside the 80 % band?"""
    from vekst.projection.agepattern import _with_net_migration, estimate_age_pattern

    panel, _ = _with_net_migration(panel)
    rows = []
    for origin in origins:
        estimate = estimate_age_pattern(panel, before_year=origin)
        draws = estimate.draws(n_draws, horizon, seed=origin)
        profile, pattern = draws.chunk(slice(0, n_draws))  # (draw, m, sex, age)
        n_mun, n_sex, n_age = profile.shape[1:]
        groups = age_group_matrix(np.asarray(panel["age"].values))
        population = panel["population"].sel(year=origin).sum(("sex", "age")).values
        classes = size_class(population)
        for t in range(horizon):
            year = origin + t
            if year + 1 not in panel["year"].values:
                break
            net = panel["net_migration"].sel(year=year).transpose("municipality", "sex", "age")
            start = panel["population"].sel(year=year).sum(("sex", "age")).values
            realised = np.asarray(net.values, dtype=np.float64)
            rate = realised.sum((1, 2)) / start
            residuals, index = draws.year_noise(slice(0, n_draws), t)
            noise = np.take_along_axis(
                np.broadcast_to(residuals[None], (n_draws, *residuals.shape)),
                index[:, :, None, None].astype(np.int64),
                axis=2,
            )[:, :, 0].reshape(n_draws, n_mun, n_sex, n_age)
            per_capita = pattern + rate[None, :, None, None] * profile + noise
            drawn = (per_capita * start[None, :, None, None]).sum(2) @ groups  # (d, m, g)
            observed = realised.sum(1) @ groups
            low, high = np.quantile(drawn, [0.1, 0.9], axis=0)
            inside = (observed >= low) & (observed <= high)
            for g, (label, _, _) in enumerate(AGE_GROUPS):
                rows.append(pd.DataFrame({
                    "origin": origin, "year": year, "size_class": classes,
                    "age_group": label, "inside_80": inside[:, g],
                    "width_80": high[:, g] - low[:, g],
                }))
    return pd.concat(rows, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--origins", type=int, nargs="+", default=[2010, 2012, 2014, 2016, 2018])
    args = parser.parse_args()
    import vekst

    table = coverage(vekst.load_default(), args.origins)
    order = [label for label, _, _ in AGE_GROUPS]
    by_size = table.pivot_table(index="age_group", columns="size_class", values="inside_80")
    by_size["all"] = table.groupby("age_group")["inside_80"].mean()
    print("80 % band coverage of net migration by age group (realised totals given)")
    print((100 * by_size.reindex(order)).round(0).to_string())
    by_origin = table.pivot_table(index="age_group", columns="origin", values="inside_80")
    print((100 * by_origin.reindex(order)).round(0).to_string())


if __name__ == "__main__":
    main()
