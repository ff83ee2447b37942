"""The report's section "How good are these bands?": the backtests' track record.

The backtest (:mod:`vekst.evaluate`) writes ``docs/results/backtest_table.csv`` in long
format (``origin, method, horizon, size_class, age_group, ..., coverage_50/80/95``). This
module turns it into what a planner needs: how often the real population fell inside the
80 % band, by years ahead and by municipality size, pooled over the forecast origins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from vekst.report.i18n import Lang, fmt_number

__all__ = ["SIZE_CLASSES", "band_coverage", "bands_section", "read_backtest_table"]

#: Size classes of the backtest, smallest first (inhabitants at the forecast origin).
SIZE_CLASSES: tuple[str, ...] = ("<2k", "2-5k", "5-20k", "20-50k", "50k+")
_REQUIRED = ("method", "horizon", "size_class", "age_group", "coverage_80")


def read_backtest_table(path: str | Path | None = None) -> pd.DataFrame | None:
    """Read the backtest table, or ``None`` when there is none.

    Parameters
    ----------
    path
        The CSV; default ``docs/results/backtest_table.csv`` of the source tree.

    Returns
    -------
    pandas.DataFrame or None
        The table with ``size_class`` and ``age_group`` as text.
    """
    if path is None:
        path = Path(__file__).resolve().parents[3] / "docs" / "results" / "backtest_table.csv"
    path = Path(path)
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype={"size_class": str, "age_group": str})


def band_coverage(backtest: pd.DataFrame, method: str = "bayes") -> pd.DataFrame:
    """Coverage of the 80 % band of municipal totals by horizon and size class.

    Parameters
    ----------
    backtest
        The long backtest table.
    method
        The method whose bands are judged.

    Returns
    -------
    pandas.DataFrame
        Index ``horizon``; columns ``all`` and the size classes present (in
        :data:`SIZE_CLASSES` order, then any others such as counties); values are shares
        in [0, 1], the mean over forecast origins.

    Raises
    ------
    ValueError
        If a needed column is missing or the method has no total rows.
    """
    missing = [c for c in _REQUIRED if c not in backtest.columns]
    if missing:
        raise ValueError(
            f"the backtest table lacks columns {missing}; write it with `vekst backtest`."
        )
    rows = backtest[(backtest["method"] == method) & (backtest["age_group"].astype(str) == "total")]
    if rows.empty:
        raise ValueError(f"the backtest table has no total rows of method {method!r}.")
    table = rows.pivot_table(
        index="horizon", columns="size_class", values="coverage_80", aggfunc="mean"
    )
    present = [str(c) for c in table.columns]
    order = [c for c in ("all", *SIZE_CLASSES) if c in present]
    order += [c for c in present if c not in order]
    return table[order]


def coverage_for_script(coverage: pd.DataFrame) -> dict[str, Any]:
    """The longest horizon's coverage, overall and by size class, for the explorer."""
    horizon = int(coverage.index.max())
    last = coverage.loc[horizon]
    by_size = {c: [horizon, float(last[c])] for c in SIZE_CLASSES if c in last.index}
    overall = float(last["all"]) if "all" in last.index else float(last.mean())
    return {"all": [horizon, overall], "by_size": by_size}


def bands_section(coverage: pd.DataFrame, lang: Lang | str) -> dict[str, Any]:
    """The section block: the coverage table and a sentence on what it means."""
    from vekst.report.html_helpers import table_block
    from vekst.report.i18n import t

    lang = Lang(lang)
    shown = coverage.map(lambda v: fmt_number(100 * v, lang, 0) + " %")
    horizon_label = "År fram" if lang is Lang.nb else "Years ahead"
    shown.index = pd.Index([int(h) for h in shown.index], name=horizon_label)
    names = {"all": "Alle" if lang is Lang.nb else "All"}
    shown.columns = [names.get(str(c), str(c)) for c in shown.columns]
    horizon = int(coverage.index.max())
    overall = float(coverage.loc[horizon].get("all", coverage.loc[horizon].mean()))
    if lang is Lang.nb:
        intro = (
            "Framskrivingene er prøvd på tidligere år: modellen ble tilpasset data fram til et "
            "startår og framskrevet, og resultatet ble sammenlignet med det faktiske "
            "folketallet. Et ærlig 80 %-intervall skal romme det faktiske folketallet i 8 av "
            f"10 tilfeller. {horizon} år fram gjorde det det i "
            f"{fmt_number(100 * overall, lang)} % av kommunene. Er tallet lavere enn 80 %, er "
            "intervallene for smale: regn med mer usikkerhet enn de viser, særlig i små "
            "kommuner."
        )
        caption = (
            "Andel kommuner der det faktiske folketallet lå innenfor 80 %-intervallet, etter "
            "antall år fram og kommunestørrelse (innbyggere), gjennomsnitt over startårene."
        )
    else:
        intro = (
            "The forecasts were tried on past years: the model was fitted on data up to an "
            "origin year, projected forward and compared with the population that came. An "
            "honest 80 % band holds the real population 8 times in 10. "
            f"{horizon} years ahead it did so for {fmt_number(100 * overall, lang)} % of the "
            "municipalities. Where the share is below 80 %, the bands are too narrow: expect "
            "more uncertainty than they show, most of all in small municipalities."
        )
        caption = (
            "Share of municipalities whose real population fell inside the 80 % band, by "
            "years ahead and municipality size (inhabitants), mean over the forecast origins."
        )
    return {
        "id": "bands",
        "title": t("bands", lang),
        "intro": intro,
        "blocks": [table_block(shown, caption)],
    }
