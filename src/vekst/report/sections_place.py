"""Report sections about places: the nation and counties, chosen municipalities."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from vekst.report import plots
from vekst.report.explorer import estimated_components
from vekst.report.html_helpers import (
    DECOMPOSITION_CAPTION,
    PYRAMID_YEARS,
    FigureStore,
    base_year,
    coord_map,
    decomposition_array,
    decomposition_frame,
    note,
    table_block,
    tidy_age_table,
    write_csv,
)
from vekst.report.i18n import COMPONENT_NAMES, Lang, fmt_int, fmt_signed, t, tr
from vekst.report.uncertainty_section import place_uncertainty_block

# --------------------------------------------------------------------------- sections


@dataclass
class PlaceContext:
    """What the sections about places draw from.

    Attributes
    ----------
    panel, projection
        The panel (history) and the projection.
    totals
        Projected totals ``(draw, year, municipality)``.
    figures
        Where figures are saved and embedded.
    tables
        Folder of the CSV tables.
    lang
        Language of the texts.
    decomposition
        Growth decomposition, or ``None``.
    ranking
        Attractiveness ranking of municipalities (for the intro), or ``None``.
    coverage_notes
        The sentences on how often the bands held the truth in backtests
        (:func:`vekst.report.bands.coverage_notes`): ``"all"``, per size class and
        ``"nation"``; empty without a backtest.
    pyramid_group
        Years of age per pyramid bar (5, or 1 for single years).
    uncertainty
        Variance by source (:func:`vekst.uncertainty.uncertainty_by_source`), or ``None``.
    population_cells
        The projected cells ``population (draw, year, municipality, age, sex)`` of the
        municipalities shown in detail, read into memory together, or ``None`` (each
        section then reads its own).
    """

    panel: xr.Dataset
    projection: xr.Dataset
    totals: xr.DataArray
    figures: FigureStore
    tables: Path
    lang: Lang = Lang.en
    decomposition: xr.Dataset | xr.DataArray | None = None
    ranking: pd.DataFrame | None = None
    coverage_notes: Mapping[str, str] = field(default_factory=dict)
    pyramid_group: int = 5
    uncertainty: xr.Dataset | None = None
    population_cells: xr.DataArray | None = None


def national_section(ctx: PlaceContext, place: str) -> dict[str, Any]:
    """The nation's and the counties' fan charts."""
    panel, projection, totals, figures, lang = (
        ctx.panel,
        ctx.projection,
        ctx.totals,
        ctx.figures,
        ctx.lang,
    )
    base = base_year(projection)
    history = panel["population"].sum(("municipality", "age", "sex"))
    history = history.sel(year=history["year"] <= base)
    national = totals.sum("municipality")
    blocks = [
        figures.add(
            plots.fan_chart(
                history,
                national,
                title=tr(
                    lang,
                    f"{place}: population on 1 January",
                    f"{'Norge' if place == 'Norway' else place}: folketall 1. januar",
                ),
                ylabel=tr(lang, "Persons (1 January)", "Personer (1. januar)"),
            ),
            "national",
            tr(lang, f"Fan chart of the population of {place}", f"Viftediagram for {place}"),
            tr(
                lang,
                "The black line is the observed population. The blue line is the median "
                "projection: half of the simulated futures lie above it and half below. The "
                "dark band holds the middle 50 % of the simulated futures, the middle band "
                "80 % and the light band 95 %. A band is a statement of uncertainty, not a "
                "range of scenarios. ",
                "Den svarte linjen er observert folketall. Den blå linjen er median "
                "framskriving: halvparten av de simulerte framtidene ligger over og halvparten "
                "under. Det mørke båndet rommer de midterste 50 % av framtidene, det midterste "
                "80 % og det lyse 95 %. Et bånd uttrykker usikkerhet, ikke en rekke "
                "scenarioer. ",
            )
            + ctx.coverage_notes.get("nation", ctx.coverage_notes.get("all", "")),
        )
    ]
    counties = []
    if "county" in projection.coords:
        names = coord_map(panel, "county", "county_name")
        county_totals = totals.groupby("county").sum("municipality")
        county_history = panel["population"].sum(("age", "sex")).groupby("county").sum()
        county_history = county_history.sel(year=county_history["year"] <= base)
        counties = [str(c) for c in county_totals["county"].values]
    if counties:
        ncols = 3
        nrows = int(np.ceil(len(counties) / ncols))
        fig = Figure(figsize=(12, 2.8 * nrows), layout="constrained")
        # One y-scale for all counties, in % of the base year: a small county's band is
        # then compared with a large one's on the same footing (its own axis would make
        # Finnmark look as steady or as volatile as Oslo).
        axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True).ravel()
        for ax in axes[len(counties) :]:
            ax.set_visible(False)
        for i, (ax, county) in enumerate(zip(axes, counties, strict=False)):
            draws_c = county_totals.sel(county=county)
            level = float(draws_c.sel(year=base).median()) or 1.0
            history_c = (
                100 * county_history.sel(county=county) / level
                if county in set(county_history["county"].values.astype(str))
                else None
            )
            plots.fan_chart(
                history_c,
                100 * draws_c / level,
                ax=ax,
                title=f"{names.get(county, county)} ({county})",
                ylabel=tr(lang, f"% of {base}", f"% av {base}") if i % ncols == 0 else "",
                legend=i == 0,
            )
            ax.set_xlabel("")
        blocks.append(
            figures.add(
                fig,
                "counties",
                tr(lang, "Fan charts of the county populations", "Viftediagram for fylkene"),
                tr(
                    lang,
                    f"The same chart for each county (2024 borders), in % of its population "
                    f"in {base} and on one scale, so the counties' growth and uncertainty can "
                    "be compared directly. Municipalities are added up within each simulated "
                    "future before the bands are drawn, so a county's band is narrower than "
                    "the sum of its municipalities' bands would suggest: good and bad luck in "
                    "different municipalities partly cancel.",
                    f"Samme diagram for hvert fylke (grenser fra 2024), i % av folketallet i "
                    f"{base} og på samme skala, så fylkenes vekst og usikkerhet kan "
                    "sammenlignes direkte. Kommunene legges sammen innenfor hver simulerte "
                    "framtid før båndene tegnes, så et fylkes bånd er smalere enn summen av "
                    "kommunenes bånd: flaks og uflaks i ulike kommuner utligner delvis "
                    "hverandre.",
                ),
            )
        )
    return {
        "id": "national",
        "title": t("national", lang) if place == "Norway" else f"{place} and the counties",
        "intro": tr(
            lang,
            f"Projected population from 1 January {base} to {int(totals['year'].max())}, "
            f"from {totals.sizes['draw']} simulated futures drawn from the fitted model.",
            f"Framskrevet folketall fra 1. januar {base} til {int(totals['year'].max())}, fra "
            f"{totals.sizes['draw']} simulerte framtider trukket fra den tilpassede modellen.",
        ),
        "blocks": blocks,
        "anchor_extra": "counties" if counties else None,
    }


def _table_years(years: Sequence[int], base: int) -> list[int]:
    years = [int(y) for y in years]
    chosen = [base] + [y for y in years if y > base and y % 5 == 0] + [years[-1]]
    return [y for y in dict.fromkeys(chosen) if y in years]


def _age_table_display(table: pd.DataFrame, lang: Lang) -> pd.DataFrame:
    """One cell per (group, year): median and 80 % interval."""
    years = list(dict.fromkeys(table.columns.get_level_values("year")))
    display = pd.DataFrame(index=table.index)
    for year in years:
        cells = []
        for _, row in table.iterrows():
            low, mid, high = row[(year, "q10")], row[(year, "q50")], row[(year, "q90")]
            if np.isclose(low, high):
                # The base year is observed: no interval to show.
                cells.append(fmt_int(mid, lang))
            else:
                cells.append(f"{fmt_int(mid, lang)} ({fmt_int(low, lang)}–{fmt_int(high, lang)})")
        display[str(year)] = cells
    display.index.name = t("age_group", lang)
    return display


def _coverage_note(ctx: PlaceContext, code: str) -> str:
    """The backtest's coverage for municipalities of ``code``'s size (its population in
    the base year, as the backtest classes places at each origin)."""
    from vekst.evaluate.scoring import size_class

    base = base_year(ctx.projection)
    population = ctx.panel["population"].sel(municipality=code, year=base).sum()
    label = str(size_class([float(population)])[0])
    return ctx.coverage_notes.get(label, ctx.coverage_notes.get("all", ""))


def municipality_section(code: str, ctx: PlaceContext) -> dict[str, Any]:
    """Printable detail of one municipality: fan chart, pyramids, age groups, drivers."""
    panel, projection, totals, figures, lang = (
        ctx.panel,
        ctx.projection,
        ctx.totals,
        ctx.figures,
        ctx.lang,
    )
    decomposition, ranking, tables = ctx.decomposition, ctx.ranking, ctx.tables
    names = coord_map(projection, "municipality", "name") or coord_map(
        panel, "municipality", "name"
    )
    name = names.get(code, code)
    base = base_year(projection)
    years = [int(y) for y in projection["year"].values]
    blocks: list[dict[str, Any]] = []

    history = None
    if code in set(panel["municipality"].values.astype(str)):
        history = panel["population"].sel(municipality=code).sum(("age", "sex"))
        history = history.sel(year=history["year"] <= base)
    blocks.append(
        figures.add(
            plots.fan_chart(
                history,
                totals.sel(municipality=code),
                title=tr(lang, f"{name}: population", f"{name}: folketall"),
                ylabel=tr(lang, "Persons (1 January)", "Personer (1. januar)"),
            ),
            f"population_{code}",
            tr(lang, f"Fan chart of the population of {name}", f"Viftediagram for {name}"),
            tr(
                lang,
                "Observed population (black), median projection (blue line) and the bands "
                "that hold 50 %, 80 % and 95 % of the simulated futures. Small municipalities "
                "have wide bands: a few families moving make a large difference. ",
                "Observert folketall (svart), median framskriving (blå linje) og båndene som "
                "rommer 50 %, 80 % og 95 % av de simulerte framtidene. Små kommuner har brede "
                "bånd: noen få familier som flytter, utgjør en stor forskjell. ",
            )
            + _coverage_note(ctx, code),
        )
    )
    if ctx.uncertainty is not None:
        block = place_uncertainty_block(ctx.uncertainty, code, name, figures, lang)
        if block is not None:
            blocks.append(block)

    if "population" in projection:
        # In memory: grouping ages of a lazily read netCDF array reads the file once per age
        # group (5 s a pyramid on the demo's projection, 0.2 s so).
        cells = ctx.population_cells
        if cells is not None and code in set(cells["municipality"].values.astype(str)):
            population = cells.sel(municipality=code)
        else:
            population = projection["population"].sel(municipality=code).load()
        observed = None
        if history is not None:
            observed = panel["population"].sel(municipality=code, year=base)
        shown = [y for y in PYRAMID_YEARS if y in years]
        if not shown:
            shown = [years[-1]]
            blocks.append(
                note(
                    f"The projection ends in {years[-1]}, before "
                    f"{' and '.join(map(str, PYRAMID_YEARS))}; the pyramid shows {years[-1]}."
                )
            )
        # The years share one figure and one x-scale, so growth and ageing are seen, not
        # hidden by axes that rescale; five-year groups avoid the false bulges single
        # years alias into at screen resolution.
        fig = Figure(figsize=(5.2 * len(shown), 5.6), layout="constrained")
        axes = fig.subplots(1, len(shown), sharex=True, sharey=True, squeeze=False)[0]
        for ax, year in zip(axes, shown, strict=True):
            plots.population_pyramid(
                population,
                year,
                ax=ax,
                observed=observed,
                observed_label=tr(lang, f"Observed {base}", f"Observert {base}"),
                group_size=ctx.pyramid_group,
                title=tr(lang, f"{name}: population {year}", f"{name}: befolkning {year}"),
            )
        years_text = " and ".join(map(str, shown))
        blocks.append(
            figures.add(
                fig,
                f"pyramid_{code}",
                tr(
                    lang,
                    f"Population pyramids of {name} in {years_text}",
                    f"Befolkningspyramider for {name} i {years_text}",
                ),
                tr(
                    lang,
                    "Men to the left, women to the right, one bar per "
                    + ("five-year age group. " if ctx.pyramid_group == 5 else "year of age. ")
                    + "The bar is the median number of persons in the group; the thin whisker "
                    "spans the middle 80 % of the simulated futures. The black outline is the "
                    f"observed population on 1 January {base}, so you can see each cohort "
                    "move up the pyramid as it ages. Both years share one scale.",
                    "Menn til venstre, kvinner til høyre, én søyle per "
                    + ("femårig aldersgruppe. " if ctx.pyramid_group == 5 else "alderstrinn. ")
                    + "Søylen er medianen av antall personer i gruppen; den tynne streken "
                    "spenner over de midterste 80 % av de simulerte framtidene. Det svarte "
                    f"omrisset er observert befolkning 1. januar {base}, så en ser hvert "
                    "årskull flytte seg oppover i pyramiden. Begge årene har samme skala.",
                ),
            )
        )
        age_draws = population
    elif "population_age_group" in projection:
        age_draws = projection["population_age_group"].sel(municipality=code)
        blocks.append(
            note(
                "The projection kept age groups only (not single years of age), so no "
                "pyramid is drawn. Rerun the projection with detail='full' for pyramids."
            )
        )
    else:
        age_draws = None
        blocks.append(note("The projection kept totals only; no age detail is available."))

    if age_draws is not None:
        table = plots.age_group_table(age_draws, years=_table_years(years, base))
        csv_path = write_csv(
            tables / f"age_groups_{code}.csv", tidy_age_table(table), lang.value
        )
        blocks.append(
            table_block(
                _age_table_display(table, lang),
                tr(
                    lang,
                    "Persons by age group (both sexes). Each cell is the median with the 80 % "
                    "interval in brackets: in 8 of 10 simulated futures the number lies in "
                    "that range. Groups follow kindergarten (1-5), primary school (6-12), "
                    "lower secondary (13-15), upper secondary (16-19) and elderly care (67+). "
                    "The interval of the total is that of the total itself, not the sum of "
                    "the groups' intervals.",
                    "Personer etter aldersgruppe (begge kjønn). Hver celle er medianen med "
                    "80 %-intervallet i parentes: i 8 av 10 simulerte framtider ligger tallet "
                    "der. Gruppene følger barnehage (1-5), barneskole (6-12), ungdomsskole "
                    "(13-15), videregående (16-19) og eldreomsorg (67+). Intervallet for "
                    "totalen er totalens eget, ikke summen av gruppenes intervaller.",
                )
                + (" " + ctx.coverage_notes["ages"] if "ages" in ctx.coverage_notes else ""),
                csv=f"tables/{csv_path.name}",
            )
        )

    if decomposition is not None:
        contribution = decomposition_array(decomposition)
        if code in set(contribution["municipality"].values.astype(str)):
            summary = decomposition_frame(decomposition, code)
            # Show only what was estimated (no deaths bar where deaths are not observed).
            shown = estimated_components(panel, summary.index, contribution)
            summary = summary.loc[[c for c in summary.index if c in shown]]
            place_years = contribution["year"].values
            first, last = int(place_years.min()), int(place_years.max())
            period = "observed years" if last < base else "projected years"
            blocks.append(
                figures.add(
                    plots.decomposition_chart(
                        summary,
                        title=tr(
                            lang,
                            f"{name}: drivers of growth, {first}-{last}",
                            f"{name}: drivkrefter for vekst, {first}-{last}",
                        ),
                        units=tr(lang, "Persons per year", "Personer per år"),
                        labels={
                            c: COMPONENT_NAMES.get(c, {}).get(lang.value, c) for c in summary.index
                        },
                    ),
                    f"decomposition_{code}",
                    tr(
                        lang,
                        f"Drivers of population growth in {name}",
                        f"Drivkrefter for befolkningsveksten i {name}",
                    ),
                    tr(
                        lang,
                        f"Average yearly change in persons over the {period} {first}-{last}, "
                        "split into its drivers. " + DECOMPOSITION_CAPTION,
                        f"Gjennomsnittlig årlig endring i personer {first}-{last}, fordelt på "
                        "drivkrefter. Grønne søyler er fødsler og dødsfall: det alderssammen"
                        "setningen alene ville gitt med nasjonale rater, og hvor mye stedet "
                        "avviker fra det. Blå søyler er nettoflytting forklart av innvandring "
                        "til Norge, sentralitet, arbeidsplassvekst (i kommunen og hos naboene "
                        "der innbyggerne pendler) og unge som går inn i arbeidslivet (DS). Den "
                        "oransje søylen er attraktivitet: flytting modellen ikke forklarer med "
                        "disse faktorene. Grått er resten (tilfeldig variasjon). Den mørke "
                        "søylen er totalen; strekene spenner over de midterste 80 %.",
                    ),
                )
            )
        else:
            blocks.append(
                note(
                    tr(
                        lang,
                        f"The decomposition does not include {name} ({code}).",
                        f"Dekomponeringen omfatter ikke {name} ({code}).",
                    )
                )
            )

    intro = tr(lang, f"Municipality {code}, {name}.", f"Kommune {code}, {name}.")
    if ranking is not None and code in ranking.index:
        row = ranking.loc[code]
        mean, low, high = (fmt_signed(row[c], 2, lang) for c in ("mean", "low", "high"))
        k = ranking.attrs.get("k", 10)
        share = f"{100 * row['p_top_k']:.0f} %"
        intro += tr(
            lang,
            f" Attractiveness {mean} % of the population per year (94 % interval {low} to "
            f"{high}), rank {int(row['rank'])} of {len(ranking)}; probability of being among "
            f"the {k} most attractive: {share}.",
            f" Attraktivitet {mean} % av folketallet per år (94 %-intervall {low} til "
            f"{high}), rangert {int(row['rank'])} av {len(ranking)}; sannsynlighet for å være "
            f"blant de {k} mest attraktive: {share}.",
        )
    return {
        "id": f"municipality-{code}",
        "title": f"{name} ({code})",
        "intro": intro,
        "blocks": blocks,
    }
