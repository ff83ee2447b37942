"""Report blocks on where the bands come from (see :mod:`vekst.uncertainty`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from vekst.report.html_helpers import FigureStore, table_block, write_csv
from vekst.report.i18n import Lang, fmt_int, tr

__all__ = [
    "SOURCE_LABELS",
    "explorer_sources",
    "place_uncertainty_block",
    "uncertainty_section",
]

#: Plain-language names of the sources, (English, Norwegian).
SOURCE_LABELS: dict[str, tuple[str, str]] = {
    "parameters": ("model estimates", "modellens anslag"),
    "common_shocks": ("national migration waves", "nasjonale flyttebølger"),
    "local_shocks": ("local ups and downs", "lokale svingninger"),
    "age_schedule": ("who moves (ages)", "hvem som flytter (alder)"),
    "fertility": ("births", "fødsler"),
    "mortality": ("deaths", "dødsfall"),
}
_COLOURS = {
    "parameters": "#7f7f7f",
    "common_shocks": "#1f77b4",
    "local_shocks": "#ff7f0e",
    "age_schedule": "#9467bd",
    "fertility": "#2ca02c",
    "mortality": "#8c564b",
}


def _label(source: str, lang: Lang) -> str:
    english, norwegian = SOURCE_LABELS.get(source, (source, source))
    return norwegian if lang is Lang.nb else english


def _shown_years(attribution: xr.Dataset) -> list[int]:
    """Four years ahead, ten years ahead and the last year (those that exist)."""
    years = [int(y) for y in attribution["year"].values]
    base, end = years[0], years[-1]
    return sorted({y for y in (base + 4, base + 10, end) if base < y <= end})


def _stacked_bars(shares: pd.DataFrame, title: str, lang: Lang) -> Figure:
    """Horizontal stacked bars: one bar per row of ``shares`` (columns = sources)."""
    fig = Figure(figsize=(7.5, 0.6 * len(shares) + 1.6), layout="constrained")
    ax = fig.subplots()
    left = np.zeros(len(shares))
    rows = [str(i) for i in shares.index]
    for source in shares.columns:
        values = 100 * shares[source].to_numpy()
        ax.barh(rows, values, left=left, color=_COLOURS.get(source), label=_label(source, lang))
        for y, (x0, width) in enumerate(zip(left, values, strict=True)):
            if width >= 8:
                ax.text(x0 + width / 2, y, f"{width:.0f} %", ha="center", va="center",
                        color="white", fontsize=8)
        left += values
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel(tr(lang, "Share of the variance (%)", "Andel av variansen (%)"))
    ax.set_title(title)
    fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    return fig


def _sentence(shares: pd.Series, year: int, lang: Lang) -> str:
    top = shares.sort_values(ascending=False)
    top = top[top >= 0.05].head(3)
    parts = [f"{100 * value:.0f} % {_label(source, lang)}" for source, value in top.items()]
    if lang is Lang.nb:
        return f"Av usikkerheten i {year} kommer " + ", ".join(parts) + "."
    return f"Of the uncertainty in {year}, " + ", ".join(parts) + "."


def place_uncertainty_block(
    attribution: xr.Dataset, code: str, name: str, figures: FigureStore, lang: Lang
) -> dict[str, Any] | None:
    """Stacked bars of one municipality's band by source, or ``None`` if it is missing."""
    if code not in set(attribution["municipality"].values.astype(str)):
        return None
    years = _shown_years(attribution)
    share = attribution["share_total"].sel(municipality=code, year=years)
    shares = share.transpose("year", "source").to_pandas()
    fig = _stacked_bars(
        shares, tr(lang, f"{name}: where the band comes from", f"{name}: hva båndet består av"),
        lang,
    )
    caption = tr(
        lang,
        "Each bar splits the projected population's variance in one year by its source: each "
        "source was held at its mean in turn while the others kept the same random numbers. ",
        "Hver søyle deler variansen i det framskrevne folketallet et år etter kilde: hver "
        "kilde ble holdt på sitt gjennomsnitt etter tur, mens de andre beholdt de samme "
        "tilfeldige tallene. ",
    ) + _sentence(shares.iloc[-1], years[-1], lang)
    return figures.add(
        fig, f"uncertainty_{code}", tr(lang, f"Sources of the band of {name}",
                                       f"Kilder til båndet for {name}"), caption
    )


def uncertainty_section(
    attribution: xr.Dataset,
    names: dict[str, str],
    figures: FigureStore,
    tables: Path,
    lang: Lang,
) -> dict[str, Any]:
    """The national overview: the nation's band by source, municipalities by dominant source."""
    from vekst.uncertainty import dominant_sources

    years = _shown_years(attribution)
    blocks: list[dict[str, Any]] = []
    national = attribution["share_national"].sel(year=years).transpose("year", "source")
    national_shares = national.to_pandas()
    blocks.append(
        figures.add(
            _stacked_bars(
                national_shares,
                tr(lang, "The nation: where the band comes from",
                   "Landet: hva båndet består av"),
                lang,
            ),
            "uncertainty_national",
            tr(lang, "Sources of the national band", "Kilder til det nasjonale båndet"),
            tr(
                lang,
                "Local ups and downs cancel out nationally (what one municipality gains "
                "another loses), so the nation's band is made of national migration waves, "
                "births, deaths and the model's estimates. ",
                "Lokale svingninger jevner seg ut nasjonalt (det én kommune vinner, taper en "
                "annen), så landets bånd består av nasjonale flyttebølger, fødsler, dødsfall "
                "og modellens anslag. ",
            )
            + _sentence(national_shares.iloc[-1], years[-1], lang),
        )
    )
    counts = {}
    for year in years:
        ranking = dominant_sources(attribution, year)
        counts[year] = ranking["dominant"].value_counts()
    count_table = pd.DataFrame(counts).fillna(0).astype(int)
    count_table.index = [_label(s, lang) for s in count_table.index]
    count_table.index.name = tr(lang, "Largest source", "Største kilde")
    blocks.append(
        table_block(
            count_table.map(fmt_int),
            tr(
                lang,
                "Number of municipalities by the source that makes the largest share of their "
                "band, by year.",
                "Antall kommuner etter kilden som utgjør den største delen av båndet, per år.",
            ),
        )
    )
    end = years[-1]
    ranking = dominant_sources(attribution, end)
    ranking["municipality"] = ranking.index.astype(str)
    ranking["name"] = [names.get(code, code) for code in ranking["municipality"]]
    ranking["dominant"] = [_label(s, lang) for s in ranking["dominant"]]
    csv_path = write_csv(
        tables / "uncertainty_by_source_ranking.csv",
        ranking.reset_index(drop=True),
        lang.value,
    )
    blocks.append(
        {
            "kind": "note",
            "text": tr(
                lang,
                f"Every municipality's split for {end} is in the table {Path(csv_path).name}.",
                f"Fordelingen for hver kommune i {end} står i tabellen {Path(csv_path).name}.",
            ),
        }
    )
    leader = counts[end].idxmax()
    intro = tr(
        lang,
        "Why is a band as wide as it is? Each source of uncertainty in the projection was "
        "held at its mean in turn, with the same random numbers for the rest; the variance "
        f"that disappears is that source's part. In {end} the largest source was "
        f"{_label(leader, lang)} for {counts[end][leader]} of {int(counts[end].sum())} "
        "municipalities.",
        "Hvorfor er båndet så bredt som det er? Hver kilde til usikkerhet i framskrivingen ble "
        "holdt på sitt gjennomsnitt etter tur, med de samme tilfeldige tallene for resten; "
        f"variansen som forsvinner, er kildens del. I {end} var {_label(leader, lang)} den "
        f"største kilden for {counts[end][leader]} av {int(counts[end].sum())} kommuner.",
    )
    return {
        "id": "uncertainty",
        "title": tr(lang, "Where the bands come from", "Hva båndene består av"),
        "intro": intro,
        "blocks": blocks,
    }


def explorer_sources(
    attribution: xr.Dataset, units: list[dict[str, str]], lang: Lang
) -> dict[str, Any]:
    """The split by source for the report's explorer (nation and municipalities).

    Returns
    -------
    dict
        ``source_keys``, ``source_names``, ``source_colours``, ``source_years`` and
        ``sources`` ``{unit id: [[percent per source] per year]}``.
    """
    years = _shown_years(attribution)
    keys = [str(s) for s in attribution["source"].values]
    share = attribution["share_total"].sel(year=years).transpose("municipality", "year", "source")
    percent = np.rint(100 * share.values).astype(int)
    index = {code: i for i, code in enumerate(attribution["municipality"].values.astype(str))}
    national = np.rint(
        100 * attribution["share_national"].sel(year=years).transpose("year", "source").values
    ).astype(int)
    sources: dict[str, list] = {}
    for unit in units:
        if unit["kind"] == "nation":
            sources[unit["id"]] = national.tolist()
        elif unit["kind"] == "municipality" and unit["code"] in index:
            sources[unit["id"]] = percent[index[unit["code"]]].tolist()
    return {
        "source_keys": keys,
        "source_names": [_label(k, lang) for k in keys],
        "source_colours": [_COLOURS.get(k, "#999999") for k in keys],
        "source_years": years,
        "sources": sources,
    }
