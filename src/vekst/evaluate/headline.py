"""The backtest's headline as Markdown: coverage, accuracy against the baselines, growth.

Written beside the tables (``backtest_headline.md``) so the note and the report quote the
numbers of the run they come from, never hand-copied ones. The targets checked are those
of the project's issues on honest bands and age detail: 80 % bands covering 75-85 % at
every horizon and at least 75 % in every size class, 50 % bands 45-55 %, the same for
counties and regions; the median forecast's MAPE and CRPS at the last horizon below
naive10's and OLS's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from vekst.evaluate.chance import floor_by_age_group
from vekst.evaluate.scoring import SIZE_CLASSES, TOTAL

__all__ = ["headline_markdown", "origin_span", "origins_by_schedule"]


def _pct(value) -> str:
    return "–" if value is None or value != value else f"{100 * value:.0f}"


def _num(value, digits: int = 2) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _coverage_rows(rows: pd.DataFrame, key: str, labels: list[str]) -> list[list[str]]:
    out = []
    for horizon, by_h in rows.groupby("horizon"):
        cells = [str(horizon)]
        for label in labels:
            hit = by_h[by_h[key] == label]
            cells.append(
                "–"
                if hit.empty
                else "/".join(_pct(hit.iloc[0][f"coverage_{lv}"]) for lv in ("50", "80", "95"))
            )
        out.append(cells)
    return out


def headline_markdown(
    pooled: pd.DataFrame,
    growth: pd.DataFrame | None = None,
    *,
    notes: dict | None = None,
    method: str = "bayes",
    floor: pd.DataFrame | None = None,
    paired: pd.DataFrame | None = None,
    per_origin: pd.DataFrame | None = None,
) -> str:
    """The headline of a backtest as Markdown.

    Parameters
    ----------
    pooled
        ``BacktestResult.table(pooled=True)``.
    growth
        :func:`vekst.evaluate.diagnostics.variance_growth` of the run.
    notes
        ``BacktestResult.notes`` (origins, convergence gate).
    method
        The ensemble method whose bands are judged.
    floor
        :func:`vekst.evaluate.chance.chance_floor` of the run: its median APE is shown
        beside the age groups.
    paired
        :func:`vekst.evaluate.paired.best_baseline_comparison` of the run: whether each age
        group's difference from the best baseline at the last horizon is beyond noise.
    per_origin
        ``BacktestResult.table()`` (one row set per origin): with ``notes`` that say which origins'
        migration age schedules were calibrated, the 80 % coverage of those origins is
        shown apart from that of the short panels.

    Returns
    -------
    str
        Sections: coverage by horizon x size class; counties and regions; accuracy at the
        last horizon against every baseline; age groups at the last horizon, with the
        paired comparison against the best baseline; variance growth; the targets met or
        missed.
    """
    lines: list[str] = []
    notes = notes or {}
    if notes:
        origins = sorted(int(o) for o in notes)
        failed = [o for o in origins if notes[o].get("converged") is False]
        task_failed = [o for o in origins if "task_failed" in notes[o]]
        refitted = [o for o in origins if "first_fit" in notes[o]]
        lines.append(
            f"Origins {origins[0]}-{origins[-1]} ({len(origins)}); fits failing the "
            f"convergence gate: {failed or 'none'}"
            + (f"; fitted a second time after a failed gate: {refitted}" if refitted else "")
            + (f"; origins whose task failed: {task_failed}" if task_failed else "")
            + "."
        )
        lines.append("")
    mine = pooled[(pooled["method"] == method) & (pooled["age_group"] == TOTAL)]
    municipal = mine[mine["level"] == "municipality"]
    classes = [label for label, _ in SIZE_CLASSES] + ["all"]
    if not municipal.empty:
        lines.append(f"**Coverage of {method}'s 50/80/95 % bands, municipal totals (%)**")
        lines.append("")
        lines += _table(["h", *classes], _coverage_rows(municipal, "size_class", classes))
    aggregates = mine[mine["level"] != "municipality"]
    if not aggregates.empty:
        levels = list(dict.fromkeys(aggregates["level"]))
        lines.append("**Coverage of the 50/80/95 % bands of aggregates, summed per draw (%)**")
        lines.append("")
        lines += _table(["h", *levels], _coverage_rows(aggregates, "level", levels))
    last = int(pooled["horizon"].max())
    totals = pooled[
        (pooled["level"] == "municipality")
        & (pooled["size_class"] == "all")
        & (pooled["age_group"] == TOTAL)
        & (pooled["horizon"] == last)
    ]
    lines.append(f"**Municipal totals at h = {last}, all origins pooled (% of observed)**")
    lines.append("")
    lines += _table(
        ["method", "MAPE", "median APE", "bias", "CRPS", "interval score 80"],
        [
            [
                str(r.method),
                _num(r.mean_ape),
                _num(r.median_ape),
                _num(r.bias),
                _num(r.crps_pct),
                _num(getattr(r, "interval_score_pct_80", float("nan"))),
            ]
            for r in totals.itertuples(index=False)
        ],
    )
    ages = pooled[
        (pooled["level"] == "municipality")
        & (pooled["size_class"] == "all")
        & (pooled["horizon"] == last)
    ]
    if not ages.empty:
        table = ages.pivot(index="age_group", columns="method", values="median_ape")
        order = list(dict.fromkeys(ages["age_group"]))
        methods = list(dict.fromkeys(ages["method"]))
        lines.append(f"**Median APE by planners' age group at h = {last} (%)**")
        lines.append("")
        cover = ages[ages["method"] == method].set_index("age_group")
        has_cover = not cover.empty
        has_bias = has_cover and "aggregate_bias" in cover.columns
        extra = [f"{method} 80 % coverage"] if has_cover else []
        extra += [f"{method} aggregate bias"] if has_bias else []
        chance = floor_by_age_group(floor, last)
        extra += ["chance floor"] if chance is not None else []
        lines += _table(
            ["age group", *methods, *extra],
            [
                [g, *[_num(table.loc[g, m]) for m in methods]]
                + ([_pct(cover.loc[g, "coverage_80"])] if has_cover else [])
                + ([_num(cover.loc[g, "aggregate_bias"])] if has_bias else [])
                + ([_num(chance.get(g, float("nan")))] if chance is not None else [])
                for g in order
            ],
        )
        if chance is not None:
            lines.append(
                "Chance floor: the median APE of a forecaster who knew every municipality's "
                "fertility, mortality and migration exactly, from the chance of births "
                "(Poisson) and deaths (binomial) alone (`backtest_chance_floor.csv`). No "
                "method can go below it."
            )
            lines.append("")
        if has_bias:
            lines.append(
                "Aggregate bias: the summed forecast of all municipalities' cells against the "
                "summed observation (%). The mean percentage error of small cells (age 0, "
                "90+) is pushed up by chance alone, so it is not shown."
            )
            lines.append("")
    lines += _paired_section(paired, last)
    calibrated_sizes = _calibrated_size_classes(per_origin, notes, method)
    lines += _history_section(per_origin, notes, method, last, calibrated_sizes)
    if growth is not None and not growth.empty:
        pooled_growth = growth[(growth["origin"] == "pooled") & (growth["method"] == method)]
        if not pooled_growth.empty:
            parts = [f"{r.level} h^{r.exponent:.2f}" for r in pooled_growth.itertuples()]
            lines.append(
                "Predictive variance of totals grows like " + ", ".join(parts) + " (iid yearly "
                "shocks: h^1; the observed errors of the embedded panel: h^1.4 to h^2)."
            )
            lines.append("")
    lines += _targets(pooled, method, last, paired, calibrated_sizes)
    return "\n".join(lines)


def _weighted_coverage(rows: pd.DataFrame, by: str | list[str]) -> pd.Series:
    """80 % coverage over origins, each origin's rows weighted by their scored units."""
    keys = [rows[column] for column in ([by] if isinstance(by, str) else by)]
    weights = rows["n"].astype(float)
    covered = (rows["coverage_80"] * weights).groupby(keys).sum()
    return covered / weights.groupby(keys).sum()


def origins_by_schedule(notes: Mapping) -> tuple[list[int], list[int]]:
    """The backtest's origins with calibrated migration age schedules, and those whose
    panels were too short to calibrate.

    Parameters
    ----------
    notes
        Per-origin notes (``BacktestResult.notes``, or the ``origins`` of
        ``backtest_notes.json``), keyed by origin (int or text).

    Returns
    -------
    (list of int, list of int)
        Calibrated and short-panel origins, sorted; an origin whose notes do not record
        the calibration (no schedule was used) is in neither.
    """
    known = {
        int(origin): note["schedule_calibrated_on"]
        for origin, note in notes.items()
        if isinstance(note, Mapping) and "schedule_calibrated_on" in note
    }
    calibrated = sorted(o for o, years in known.items() if years)
    short = sorted(o for o, years in known.items() if not years)
    return calibrated, short


def _history_section(
    table: pd.DataFrame | None,
    notes: dict,
    method: str,
    last: int,
    sizes: pd.DataFrame | None = None,
) -> list[str]:
    """80 % coverage of origins with calibrated migration age schedules against short panels.

    An origin with too few years of flows before it cannot calibrate the schedules'
    spread on held-out years (:func:`vekst.projection.agepattern.estimate_age_pattern`);
    its bands behave differently, and a user's full panel is in the calibrated case.
    ``sizes`` (:func:`_calibrated_size_classes`) adds the calibrated origins' size classes.
    """
    if table is None or table.empty or not notes:
        return []
    calibrated, short = origins_by_schedule(notes)
    if not calibrated or not short:
        return []
    rows = table[(table["method"] == method) & table["coverage_80"].notna()]
    totals = rows[(rows["age_group"] == TOTAL) & (rows["size_class"] == "all")]
    groups = [("calibrated", calibrated), ("short panels", short)]
    horizons = sorted(int(h) for h in totals["horizon"].unique())
    body = []
    for level in dict.fromkeys(totals["level"]):
        for label, origins in groups:
            part = totals[(totals["level"] == level) & totals["origin"].isin(origins)]
            by_h = _weighted_coverage(part, "horizon")
            body.append([f"{level} ({label})", *[_pct(by_h.get(h)) for h in horizons]])
    lines = [
        f"**80 % coverage (%) by history: origins with calibrated migration age schedules "
        f"({origin_span(calibrated)}) and short panels too short to calibrate "
        f"({origin_span(short)})**",
        "",
    ]
    lines += _table(["totals", *[f"h = {h}" for h in horizons]], body)
    if sizes is not None:
        lines += _table(
            ["size class (calibrated)", *[f"h = {h}" for h in sizes.columns]],
            [[label, *[_pct(v) for v in row]] for label, row in sizes.iterrows()],
        )
    cells = rows[
        (rows["level"] == "municipality")
        & (rows["size_class"] == "all")
        & (rows["age_group"] != TOTAL)
        & (rows["horizon"] == last)
    ]
    if not cells.empty:
        by_group = {
            label: _weighted_coverage(cells[cells["origin"].isin(origins)], "age_group")
            for label, origins in groups
        }
        lines += _table(
            [f"cells at h = {last}", *[label for label, _ in groups]],
            [
                [g, *[_pct(by_group[label].get(g)) for label, _ in groups]]
                for g in dict.fromkeys(cells["age_group"])
            ],
        )
    return lines


def _calibrated_size_classes(
    table: pd.DataFrame | None, notes: dict, method: str
) -> pd.DataFrame | None:
    """80 % coverage of municipal totals by size class (rows) and horizon (columns) in
    the origins with calibrated migration age schedules, each origin weighted by its
    scored municipalities; ``None`` without such origins."""
    if table is None or table.empty or not notes:
        return None
    calibrated, _ = origins_by_schedule(notes)
    rows = table[
        (table["method"] == method)
        & table["coverage_80"].notna()
        & (table["level"] == "municipality")
        & (table["age_group"] == TOTAL)
        & (table["size_class"] != "all")
        & table["origin"].isin(calibrated)
    ]
    if rows.empty:
        return None
    wide = _weighted_coverage(rows, ["size_class", "horizon"]).unstack("horizon")
    order = [label for label, _ in SIZE_CLASSES if label in wide.index]
    return wide.loc[order + [c for c in wide.index if c not in order]]


def origin_span(origins: Sequence[int]) -> str:
    """``2013-2018`` for consecutive origins, else the list (``2009, 2012``)."""
    if len(origins) > 1 and origins[-1] - origins[0] == len(origins) - 1:
        return f"{origins[0]}-{origins[-1]}"
    return ", ".join(str(o) for o in origins)


def _paired_section(paired: pd.DataFrame | None, last: int) -> list[str]:
    """The difference from the best baseline per age group at the last horizon."""
    if paired is None or paired.empty:
        return []
    rows = paired[paired["horizon"] == last]
    if rows.empty:
        return []
    method = str(rows["method"].iloc[0])
    level = float(rows["level"].iloc[0])
    lines = [
        f"**{method} against the best baseline by age group at h = {last}: difference in "
        f"median APE (points), {100 * level:.0f} % interval from resampling municipalities**",
        "",
    ]
    lines += _table(
        ["age group", "best baseline", "difference", "interval", "verdict"],
        [
            [
                str(r.age_group),
                str(r.baseline),
                f"{r.difference:+.2f}",
                f"{r.lo:+.2f} to {r.hi:+.2f}",
                str(r.verdict),
            ]
            for r in rows.itertuples(index=False)
        ],
    )
    lines.append(
        "Both methods' errors of a cell are kept together and every origin of a municipality "
        "is resampled as one (`backtest_paired.csv`, all horizons; "
        "`vekst.evaluate.paired`). Within noise: the backtest cannot tell the two apart. "
        f"Each interval holds the true difference {100 * level:.0f} % of the time, so among "
        f"{len(rows)} groups about {len(rows) * (1 - level):.1f} verdicts of 'better' or "
        "'worse' are expected by chance where the methods are equal."
    )
    lines.append("")
    return lines


def _targets(
    pooled: pd.DataFrame,
    method: str,
    last: int,
    paired: pd.DataFrame | None = None,
    calibrated_sizes: pd.DataFrame | None = None,
) -> list[str]:
    mine = pooled[(pooled["method"] == method) & (pooled["age_group"] == TOTAL)]
    if mine.empty or "coverage_80" not in mine:
        return []
    municipal = mine[(mine["level"] == "municipality") & (mine["size_class"] == "all")]
    sizes = mine[(mine["level"] == "municipality") & (mine["size_class"] != "all")]
    aggregates = mine[mine["level"] != "municipality"]
    checks = [
        (
            "80 % bands cover 75-85 % at every horizon",
            municipal["coverage_80"].between(0.75, 0.85).all(),
        ),
        (
            "80 % bands cover at least 75 % in every size class",
            (sizes["coverage_80"] >= 0.75).all(),
        ),
    ]
    if calibrated_sizes is not None:
        # A full panel's forecast is made as the calibrated origins' were: its bands are
        # the ones a user gets, so the size classes are checked there too.
        low = calibrated_sizes.stack()
        low = low[low < 0.75]
        missed = ", ".join(f"{size} at h = {h}: {_pct(v)}" for (size, h), v in low.items())
        checks.append((
            "80 % bands cover at least 75 % in every size class in the origins with "
            "calibrated migration age schedules"
            + (f" (not in: {missed})" if missed else ""),
            low.empty,
        ))
    checks += [
        ("50 % bands cover 45-55 %", municipal["coverage_50"].between(0.45, 0.55).all()),
        (
            "counties and regions: 80 % in 75-85 %, 50 % in 45-55 %",
            aggregates["coverage_80"].between(0.75, 0.85).all()
            and aggregates["coverage_50"].between(0.45, 0.55).all(),
        ),
    ]
    end = pooled[
        (pooled["level"] == "municipality")
        & (pooled["size_class"] == "all")
        & (pooled["age_group"] == TOTAL)
        & (pooled["horizon"] == last)
    ].set_index("method")
    if method in end.index and {"naive10", "ols"} <= set(end.index):
        better = all(
            end.loc[method, score] < end.loc[other, score]
            for score in ("mean_ape", "crps_pct")
            for other in ("naive10", "ols")
        )
        checks.append((f"MAPE and CRPS at h = {last} below naive10's and OLS's", better))
    checks += _age_targets(pooled, method, last, paired)
    lines = ["**Targets**", ""]
    lines += [f"- [{'x' if bool(ok) else ' '}] {text}" for text, ok in checks]
    return [*lines, ""]


def _age_targets(
    pooled: pd.DataFrame, method: str, last: int, paired: pd.DataFrame | None = None
) -> list[tuple[str, bool]]:
    """The age-detail targets: median APE below every baseline, 80 % cell coverage.

    Where ``paired`` judges a missed group, its verdict follows the group's name.
    """
    ages = pooled[
        (pooled["level"] == "municipality")
        & (pooled["size_class"] == "all")
        & (pooled["age_group"] != TOTAL)
        & (pooled["horizon"] == last)
    ]
    mine = ages[ages["method"] == method].set_index("age_group")
    if mine.empty:
        return []
    others = ages[ages["method"] != method].pivot(
        index="age_group", columns="method", values="median_ape"
    )
    best_other = others.min(axis=1).reindex(mine.index)
    worse = [g for g in mine.index if not mine.loc[g, "median_ape"] < best_other.loc[g]]
    verdicts = {}
    if paired is not None and not paired.empty:
        at_last = paired[(paired["horizon"] == last) & (paired["method"] == method)]
        verdicts = dict(zip(at_last["age_group"], at_last["verdict"], strict=True))
    named = [f"{g} ({verdicts[g]})" if g in verdicts else g for g in worse]
    cover = mine["coverage_80"]
    outside = [f"{g} {100 * c:.0f}" for g, c in cover.items() if not 0.75 <= c <= 0.85]
    return [
        (
            f"median APE at h = {last} below every baseline in every age group"
            + (f" (not in: {', '.join(named)})" if worse else ""),
            not worse,
        ),
        (
            f"80 % bands of municipality x age-group cells cover 75-85 % at h = {last}"
            + (f" (outside: {', '.join(outside)})" if outside else ""),
            not outside,
        ),
    ]
