"""The report's section "How good are these bands?": the backtests' track record.

The backtest (:mod:`vekst.evaluate`) writes ``docs/results/backtest_table.csv`` in long
format (``origin, method, horizon, size_class, age_group, ..., coverage_50/80/95``). This
module turns it into what a planner needs: how often the real population fell inside the
80 % band, by years ahead and by municipality size, pooled over the forecast origins.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vekst.evaluate.headline import origin_span, origins_by_schedule
from vekst.evaluate.paired import BETTER, TIED, WORSE
from vekst.report.i18n import Lang, fmt_number

__all__ = [
    "SIZE_CLASSES",
    "BacktestOrigins",
    "age_group_coverage",
    "aggregate_coverage",
    "band_coverage",
    "bands_section",
    "coverage_notes",
    "origins_like",
    "read_backtest_notes",
    "read_backtest_table",
    "read_chance_floor",
    "read_paired_comparison",
    "schedules_calibrated",
    "size_class_words",
]

#: Size classes of the backtest, smallest first (inhabitants at the forecast origin).
SIZE_CLASSES: tuple[str, ...] = ("<2k", "2-5k", "5-20k", "20-50k", "50k+")
_REQUIRED = ("method", "horizon", "size_class", "age_group", "coverage_80")


def _results_path(name: str, path: str | Path | None) -> Path:
    """``path``, or ``docs/results/<name>`` of the source tree."""
    if path is None:
        return Path(__file__).resolve().parents[3] / "docs" / "results" / name
    return Path(path)


def _read_results(name: str, path: str | Path | None, text: tuple[str, ...]):
    """A CSV of the backtest's results (default: ``docs/results/<name>`` of the source
    tree), with the columns ``text`` read as text; ``None`` when there is none."""
    path = _results_path(name, path)
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype=dict.fromkeys(text, str))


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
    return _read_results("backtest_table.csv", path, ("size_class", "age_group"))


def read_chance_floor(path: str | Path | None = None) -> pd.DataFrame | None:
    """Read the backtest's chance floor (``backtest_chance_floor.csv``), or ``None``.

    Parameters
    ----------
    path
        The CSV; default beside the default backtest table (``docs/results``).
    """
    return _read_results("backtest_chance_floor.csv", path, ("size_class", "age_group"))


def read_paired_comparison(path: str | Path | None = None) -> pd.DataFrame | None:
    """Read the backtest's comparison with the best baseline (``backtest_paired.csv``,
    :func:`vekst.evaluate.paired.best_baseline_comparison`), or ``None``.

    Parameters
    ----------
    path
        The CSV; default beside the default backtest table (``docs/results``).
    """
    return _read_results("backtest_paired.csv", path, ("age_group", "baseline", "verdict"))


def read_backtest_notes(path: str | Path | None = None) -> dict[int, dict] | None:
    """Read the backtest's notes per origin (``backtest_notes.json``), or ``None``.

    Parameters
    ----------
    path
        The JSON file; default beside the default backtest table (``docs/results``).

    Returns
    -------
    dict or None
        Per origin (int): its convergence gate and the years its migration age schedules
        were calibrated on (``schedule_calibrated_on``, ``None`` for a panel too short to
        calibrate).
    """
    path = _results_path("backtest_notes.json", path)
    if not path.is_file():
        return None
    per_origin = json.loads(path.read_text("utf-8")).get("origins")
    if not isinstance(per_origin, dict):
        return None
    return {int(origin): note for origin, note in per_origin.items()}


def schedules_calibrated(projection: Any) -> bool | None:
    """Whether a projection's migration age schedules were calibrated on held-out years.

    Parameters
    ----------
    projection
        A projection dataset (its ``assumptions`` attribute, JSON).

    Returns
    -------
    bool or None
        ``True`` for calibrated schedules (a panel with enough years), ``False`` for a panel
        too short to calibrate, ``None`` when the projection used no such schedule.
    """
    assumptions = json.loads(projection.attrs.get("assumptions") or "{}")
    if "migration_schedule_calibrated_on" not in assumptions:
        return None
    return bool(assumptions["migration_schedule_calibrated_on"])


@dataclass(frozen=True)
class BacktestOrigins:
    """The backtest's forecast origins made as the reported forecast was made.

    Origins with calibrated migration age schedules and those whose panels were too short
    to calibrate have different bands (the short panels' cover more), so a band is judged
    by the origins of its own kind.

    Attributes
    ----------
    table
        The backtest rows of those origins.
    origins
        Those origins.
    calibrated
        ``True``: origins with calibrated schedules; ``False``: short panels; ``None``:
        every origin (the forecast's kind or the origins' is not known).
    others
        The other origins (empty with ``calibrated=None``).
    others_coverage
        80 % coverage of the municipal totals of the other origins at the longest horizon
        (mean over origins, a share), or ``None``.
    """

    table: pd.DataFrame
    origins: tuple[int, ...]
    calibrated: bool | None = None
    others: tuple[int, ...] = ()
    others_coverage: float | None = None

    @property
    def span(self) -> str:
        """The origins as text (``2013-2018``)."""
        return origin_span(self.origins)

    @property
    def is_subset(self) -> bool:
        """Whether only the origins of the forecast's kind are kept (not every origin)."""
        return self.calibrated is not None

    def source(self, lang: Lang | str) -> str:
        """The start of a coverage sentence: which backtests it quotes."""
        from vekst.report.i18n import t

        if not self.is_subset:
            return t("coverage_source_all", lang)
        return t("coverage_source_like", lang, origins=self.span)


def origins_like(
    backtest: pd.DataFrame,
    notes: Mapping[int, Mapping] | None,
    calibrated: bool | None,
) -> BacktestOrigins:
    """Keep the backtest's origins made as a forecast was (see :class:`BacktestOrigins`).

    Parameters
    ----------
    backtest
        The long backtest table (with an ``origin`` column).
    notes
        Per-origin notes (:func:`read_backtest_notes`).
    calibrated
        The forecast's kind (:func:`schedules_calibrated`).

    Returns
    -------
    BacktestOrigins
        Every origin (``calibrated=None``) when the notes, the forecast's kind or the
        table's origins do not allow the split, or when no origin is of the forecast's
        kind.
    """
    every = tuple(sorted(int(o) for o in backtest["origin"].unique())) if (
        "origin" in backtest.columns
    ) else ()
    whole = BacktestOrigins(table=backtest, origins=every)
    if not notes or calibrated is None or not every:
        return whole
    with_schedule, short = origins_by_schedule(notes)
    same = [o for o in (with_schedule if calibrated else short) if o in every]
    others = [o for o in (short if calibrated else with_schedule) if o in every]
    if not same:
        return whole
    others_table = backtest[backtest["origin"].isin(others)]
    others_coverage = None
    if others:
        try:
            last = band_coverage(others_table).iloc[-1]
            others_coverage = float(last["all"]) if "all" in last.index else None
        except ValueError:
            others_coverage = None
    return BacktestOrigins(
        table=backtest[backtest["origin"].isin(same)],
        origins=tuple(same),
        calibrated=bool(calibrated),
        others=tuple(others),
        others_coverage=others_coverage,
    )


#: The paired comparison's verdicts in the report's words.
_VERDICTS = {
    BETTER: ("better", "bedre"),
    WORSE: ("worse", "dårligere"),
    TIED: ("no clear difference", "ingen sikker forskjell"),
}


def _against_best(paired: pd.DataFrame | None, horizon: int, lang: Lang) -> dict[str, str]:
    """Per age group: the difference from the best other method and the verdict, as text."""
    if paired is None or paired.empty:
        return {}
    rows = paired[(paired["horizon"] == horizon) & (paired["method"] == "bayes")]
    out = {}
    for r in rows.itertuples(index=False):
        words = _VERDICTS.get(str(r.verdict), (str(r.verdict),) * 2)[lang is Lang.nb]
        points = ("+" if r.difference > 0 else "") + fmt_number(r.difference, lang, 2)
        out[str(r.age_group)] = f"{points} ({r.baseline}): {words}"
    return out


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
    rows = _rows(backtest, method, "municipality")
    rows = rows[rows["age_group"].astype(str) == "total"]
    if rows.empty:
        raise ValueError(f"the backtest table has no total rows of method {method!r}.")
    table = rows.pivot_table(
        index="horizon", columns="size_class", values="coverage_80", aggfunc="mean"
    )
    present = [str(c) for c in table.columns]
    order = [c for c in ("all", *SIZE_CLASSES) if c in present]
    order += [c for c in present if c not in order]
    return table[order]


def _rows(backtest: pd.DataFrame, method: str, level: str) -> pd.DataFrame:
    """One method's rows of one level (tables without ``level`` are municipal)."""
    rows = backtest[backtest["method"] == method]
    if "level" in rows.columns:
        rows = rows[rows["level"].astype(str) == level]
    return rows


def age_group_coverage(backtest: pd.DataFrame, method: str = "bayes") -> pd.DataFrame | None:
    """Coverage of the 50/80/95 % bands of municipality x age-group cells, longest horizon.

    Returns
    -------
    pandas.DataFrame or None
        Index ``age_group`` in the planners' order; columns ``coverage_50/80/95`` and
        ``median_ape`` (means over forecast origins); ``None`` without age-group rows.
    """
    from vekst.agegroups import AGE_GROUPS

    rows = _rows(backtest, method, "municipality")
    rows = rows[(rows["age_group"].astype(str) != "total") & (rows["size_class"] == "all")]
    if rows.empty:
        return None
    rows = rows[rows["horizon"] == rows["horizon"].max()]
    columns = [c for c in ("coverage_50", "coverage_80", "coverage_95", "median_ape") if c in rows]
    table = rows.groupby("age_group")[columns].mean()
    order = [label for label, *_ in AGE_GROUPS if label in table.index]
    return table.loc[order + [g for g in table.index if g not in order]]


def aggregate_coverage(backtest: pd.DataFrame, method: str = "bayes") -> pd.DataFrame | None:
    """Coverage of the 80 % band of county and region totals (summed per draw) by horizon."""
    if "level" not in backtest.columns:
        return None
    rows = backtest[(backtest["method"] == method) & (backtest["level"] != "municipality")]
    rows = rows[rows["age_group"].astype(str) == "total"]
    if rows.empty:
        return None
    return rows.pivot_table(index="horizon", columns="level", values="coverage_80", aggfunc="mean")


#: Size classes in words, as the sentences of the report name them.
SIZE_CLASS_WORDS: dict[str, tuple[str, str]] = {
    "<2k": ("under 2,000 inhabitants", "under 2 000 innbyggere"),
    "2-5k": ("2,000-5,000 inhabitants", "2 000-5 000 innbyggere"),
    "5-20k": ("5,000-20,000 inhabitants", "5 000-20 000 innbyggere"),
    "20-50k": ("20,000-50,000 inhabitants", "20 000-50 000 innbyggere"),
    "50k+": ("50,000 inhabitants and more", "50 000 innbyggere og flere"),
}


def size_class_words(label: str, lang: Lang | str) -> str:
    """A size class (``"50k+"``) in words of ``lang``."""
    en, nb = SIZE_CLASS_WORDS.get(str(label), (str(label), str(label)))
    return nb if Lang(lang) is Lang.nb else en


def coverage_notes(
    backtest: pd.DataFrame, lang: Lang | str, origins: BacktestOrigins | None = None
) -> dict[str, str]:
    """The sentences under the fan charts: how often the 80 % band held, as measured.

    A municipality's chart quotes its own size class (a band is a claim about places like
    it: four years ahead the classes range from 66 to 84 % in the shipped backtest's
    calibrated origins), the nation's chart the counties, the largest units backtested.

    Parameters
    ----------
    backtest
        The long backtest table, of the origins to quote.
    lang
        Language of the sentences.
    origins
        Which origins ``backtest`` holds (:func:`origins_like`): the sentences name them;
        default "backtests on past years".

    Returns
    -------
    dict
        ``"all"`` (every municipality), each size class present, and ``"county"``,
        ``"region"`` and ``"nation"`` (the counties' sentence) where the table has
        aggregate rows.
    """
    from vekst.report.i18n import t

    coverage = band_coverage(backtest)
    horizon = int(coverage.index.max())
    last = coverage.loc[horizon]
    source = origins.source(lang) if origins is not None else t("coverage_source_all", lang)

    def percent(share: float) -> str:
        return f"{100 * share:.0f} %"

    notes: dict[str, str] = {}
    if "all" in last.index and pd.notna(last["all"]):
        notes["all"] = t(
            "coverage_measured", lang, source=source, measured=percent(last["all"]),
            horizon=horizon,
        )
    for label in SIZE_CLASSES:
        if label in last.index and pd.notna(last[label]):
            notes[label] = t(
                "coverage_measured_class",
                lang,
                source=source,
                size=size_class_words(label, lang),
                measured=percent(last[label]),
                horizon=horizon,
            )
    aggregates = aggregate_coverage(backtest)
    for level in ("county", "region"):
        if aggregates is None or level not in aggregates.columns:
            continue
        shares = aggregates[level].dropna()
        if not shares.empty:
            notes[level] = t(
                f"coverage_measured_{level}",
                lang,
                source=source,
                measured=percent(shares.loc[shares.index.max()]),
                horizon=int(shares.index.max()),
            )
    if "county" in notes:
        notes["nation"] = notes["county"]
    ages = age_group_coverage(backtest)
    if ages is not None and ages["coverage_80"].notna().any():
        shares = (100 * ages["coverage_80"].dropna()).round().astype(int)

        def groups(value: int) -> str:
            return ", ".join(str(g) for g in shares.index[shares == value])

        low, high = int(shares.min()), int(shares.max())
        notes["ages"] = t(
            "coverage_measured_ages",
            lang,
            source=source,
            horizon=horizon,
            low=f"{low} %",
            low_groups=groups(low),
            high=f"{high} %",
            high_groups=groups(high),
        )
    return notes


def bands_section(
    coverage: pd.DataFrame,
    lang: Lang | str,
    backtest: pd.DataFrame | None = None,
    floor: pd.DataFrame | None = None,
    paired: pd.DataFrame | None = None,
    origins: BacktestOrigins | None = None,
) -> dict[str, Any]:
    """The section: coverage tables (totals; with ``backtest`` also counties, regions and
    age groups, with ``floor`` the chance floor beside the age groups' median errors, with
    ``paired`` the difference from the best other method) and a sentence on what they
    mean; with ``origins`` (:func:`origins_like`, the origins ``coverage`` and
    ``backtest`` hold) also which origins those are and how the others did."""
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
    shown_origins = f" {origins.span}." if origins is not None and origins.is_subset else "."
    if lang is Lang.nb:
        intro = (
            "Framskrivingene er prøvd på tidligere år: modellen ble tilpasset data fram til et "
            "startår og framskrevet, og resultatet ble sammenlignet med det faktiske "
            "folketallet. Et ærlig 80 %-intervall skal romme det faktiske folketallet i 8 av "
            f"10 tilfeller. {horizon} år fram gjorde det det i "
            f"{fmt_number(100 * overall, lang)} % av kommunene. Er tallet lavere enn 80 %, er "
            "intervallene for smale: regn med mer usikkerhet enn de viser."
            + _narrow_classes(coverage.loc[horizon], horizon, lang)
            + _origins_sentence(origins, horizon, lang)
        )
        caption = (
            "Andel kommuner der det faktiske folketallet lå innenfor 80 %-intervallet, etter "
            "antall år fram og kommunestørrelse (innbyggere), gjennomsnitt over startårene"
            + shown_origins
        )
    else:
        intro = (
            "The forecasts were tried on past years: the model was fitted on data up to an "
            "origin year, projected forward and compared with the population that came. An "
            "honest 80 % band holds the real population 8 times in 10. "
            f"{horizon} years ahead it did so for {fmt_number(100 * overall, lang)} % of the "
            "municipalities. Where the share is below 80 %, the bands are too narrow: expect "
            "more uncertainty than they show."
            + _narrow_classes(coverage.loc[horizon], horizon, lang)
            + _origins_sentence(origins, horizon, lang)
        )
        caption = (
            "Share of municipalities whose real population fell inside the 80 % band, by "
            "years ahead and municipality size (inhabitants), mean over the forecast origins"
            + shown_origins
        )
    blocks = [table_block(shown, caption)]
    if backtest is not None:
        blocks.extend(_detail_blocks(backtest, lang, floor, paired, origins))
    return {"id": "bands", "title": t("bands", lang), "intro": intro, "blocks": blocks}


def _narrow_classes(last: pd.Series, horizon: int, lang: Lang) -> str:
    """The sentence naming the size classes whose bands held less than 80 % of the time."""
    narrow = [
        f"{size_class_words(label, lang)} ({fmt_number(100 * last[label], lang, 0)} %)"
        for label in SIZE_CLASSES
        # As shown: a class printed as 80 % is not called too narrow.
        if label in last.index and pd.notna(last[label]) and round(100 * last[label]) < 80
    ]
    if not narrow:
        return ""
    joined = ", ".join(narrow)
    if lang is Lang.nb:
        return f" {horizon} år fram gjelder det kommuner med {joined}."
    return f" {horizon} years ahead that holds for municipalities of {joined}."


def _origins_sentence(origins: BacktestOrigins | None, horizon: int, lang: Lang) -> str:
    """Which origins the tables show (those made as this forecast was) and how the other
    origins' bands did."""
    if origins is None or not origins.is_subset:
        return ""
    others = origin_span(origins.others)
    held = (
        fmt_number(100 * origins.others_coverage, lang, 0) + " %"
        if origins.others_coverage is not None
        else ""
    )
    if lang is Lang.nb:
        kind = (
            "der flyttemønsteret etter alder ble kalibrert på holdt-ut år, slik det er i "
            "denne framskrivingen"
            if origins.calibrated
            else "der dataene var for korte til å kalibrere flyttemønsteret etter alder, "
            "slik de er i denne framskrivingen"
        )
        text = f" Tabellene viser startårene {origins.span}, {kind}."
        if others and held:
            text += (
                f" I de andre startårene ({others}) rommet intervallene {held} av kommunene "
                f"{horizon} år fram."
            )
        return text
    kind = (
        "whose migration age schedules were calibrated on held-out years, as this "
        "forecast's were"
        if origins.calibrated
        else "whose panels were too short to calibrate the migration age schedules, as "
        "this forecast's was"
    )
    text = f" The tables show the forecast origins {origins.span}, {kind}."
    if others and held:
        text += (
            f" In the other origins ({others}) the bands held for {held} of the "
            f"municipalities {horizon} years ahead."
        )
    return text


def _percent(frame: pd.DataFrame, lang: Lang) -> pd.DataFrame:
    return frame.map(lambda v: fmt_number(100 * v, lang, 0) + " %")


def _detail_blocks(
    backtest: pd.DataFrame,
    lang: Lang,
    floor: pd.DataFrame | None = None,
    paired: pd.DataFrame | None = None,
    origins: BacktestOrigins | None = None,
) -> list[dict[str, Any]]:
    """Counties and regions, and age groups, from the same backtests."""
    from vekst.report.html_helpers import table_block

    blocks = []
    aggregates = aggregate_coverage(backtest)
    if aggregates is not None:
        shown = _percent(aggregates, lang)
        shown.index = pd.Index(
            [int(h) for h in shown.index], name="År fram" if lang is Lang.nb else "Years ahead"
        )
        labels = {"county": ("Counties", "Fylker"), "region": ("Labour-market regions",
                                                             "Bo- og arbeidsmarkedsregioner")}
        shown.columns = [labels.get(c, (c, c))[lang is Lang.nb] for c in shown.columns]
        blocks.append(table_block(shown, (
            "Andel fylker og regioner der det faktiske folketallet lå innenfor "
            "80 %-intervallet. Kommunene er summert per simulert framtid, så intervallet tar "
            "med at kommuner i samme region svinger sammen."
            if lang is Lang.nb else
            "Share of counties and labour-market regions whose real population fell inside "
            "the 80 % band. Municipalities are summed future by future, so the band counts "
            "that neighbours move together."
        )))
    ages = age_group_coverage(backtest)
    if ages is not None:
        horizon = int(backtest["horizon"].max())
        shown = _percent(ages.drop(columns="median_ape", errors="ignore"), lang)
        shown.columns = [c.replace("coverage_", "") + " %-" + ("bånd" if lang is Lang.nb
                                                               else "band") for c in shown.columns]
        if "median_ape" in ages:
            shown[("Median feil" if lang is Lang.nb else "Median error")] = ages[
                "median_ape"
            ].map(lambda v: fmt_number(v, lang, 1) + " %")
        from vekst.evaluate.chance import floor_by_age_group

        chance = floor_by_age_group(floor, horizon)
        if chance is not None and "median_ape" in ages:
            shown[("Tilfeldighetsgulv" if lang is Lang.nb else "Chance floor")] = [
                fmt_number(chance[g], lang, 1) + " %" if g in chance else "–"
                for g in shown.index
            ]
        against = _against_best(paired, horizon, lang) if "median_ape" in ages else {}
        if against:
            shown[("Mot beste andre metode" if lang is Lang.nb
                   else "Against the best other method")] = [
                against.get(g, "–") for g in shown.index
            ]
        shown.index.name = "Alder" if lang is Lang.nb else "Age"
        floor_note = {
            Lang.nb: " Tilfeldighetsgulvet er medianfeilen en framskriving ville hatt selv "
            "om den kjente fruktbarhet, dødelighet og flytting i hver kommune nøyaktig: "
            "tilfeldige fødsler og dødsfall alene. Ingen metode kommer under det.",
            Lang.en: " The chance floor is the median error a forecast would have even if it "
            "knew every municipality's fertility, mortality and migration exactly: the chance "
            "of births and deaths alone. No method can go below it.",
        }[lang] if chance is not None and "median_ape" in ages else ""
        if against:
            floor_note += {
                Lang.nb: " Mot beste andre metode: forskjell i medianfeil (prosentpoeng; "
                "negativ er bedre) fra den metoden som bommet minst av OLS (den publiserte "
                "modellen), snitt av siste 5 eller 10 år, kohort-komponent med faste rater "
                "og ingen flytting. «Ingen sikker forskjell»: 90 %-intervallet fra "
                "trekking av hele kommuner inneholder null.",
                Lang.en: " Against the best other method: difference in median error "
                "(percentage points; negative is better) from whichever did best of OLS (the "
                "published model), the mean of the last 5 or 10 years, a cohort-component "
                "projection with fixed rates and no migration. 'No clear difference': the "
                "90 % interval from resampling whole municipalities holds zero.",
            }[lang]
        if floor_note and origins is not None and origins.is_subset:
            every = origin_span(sorted((*origins.origins, *origins.others)))
            floor_note += {
                Lang.nb: f" Tilfeldighetsgulvet og sammenligningen med andre metoder gjelder "
                f"alle startårene ({every}).",
                Lang.en: f" The chance floor and the comparison with other methods are over "
                f"every origin ({every}).",
            }[lang]
        blocks.append(table_block(shown, (
            f"Aldersgrupper, {horizon} år fram: andel av kommune x aldersgruppe der det "
            "faktiske tallet lå innenfor 50, 80 og 95 %-intervallet, og median absolutt "
            "prosentfeil. Små grupper (spedbarn, 90+) i små kommuner har store tilfeldige "
            "svingninger."
            if lang is Lang.nb else
            f"Age groups, {horizon} years ahead: share of municipality x age-group cells whose "
            "real number fell inside the 50, 80 and 95 % bands, and the median absolute "
            "percentage error. Small groups (infants, 90+) in small municipalities move by "
            "chance a lot."
        ) + floor_note))
    return blocks
