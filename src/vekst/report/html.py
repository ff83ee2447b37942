"""The HTML report: one self-contained ``index.html`` a planner can open offline.

Figures are embedded as base64 PNG and also written next to the page (``figures/``);
tables behind them are written as CSV (``tables/``). The page loads nothing from the
network (no CDN, fonts or style sheets): the explorer's numbers are embedded as JSON and
drawn by an inline script, so the page can be mailed or put on a shared drive as one file.

Sections and their ids (stable, so links and tests can rely on them):

* ``explorer`` -- pick any municipality, county or region: key numbers, fan chart (with
  Statistics Norway's projection where given), age-group table, pyramids, drivers;
* ``bands`` -- "How good are these bands?", when a backtest table is given;
* ``national`` (with ``counties``) -- fan charts of the national and county populations;
* ``municipality-<code>`` -- printable detail of the largest and the chosen municipalities;
* ``attractiveness`` -- the barometer with intervals and top-10 probabilities;
* ``coefficients`` -- coefficients by year, pooled model vs year-by-year OLS;
* ``housing`` -- "Housing plans", when the fit has ``housing_<lag>`` covariates: the
  coefficients beside OLS and, when given, a housing plan's effect per municipality;
* ``diagnostics`` -- convergence checks (a red banner ``gate-warning`` when the gate failed);
* ``sources`` -- data sources with attribution, and the model description.

The template, style sheet and script are package data in ``vekst/report/templates``.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import xarray as xr

from vekst.io import atomic_write_bytes
from vekst.report.bands import (
    band_coverage,
    bands_section,
    coverage_notes,
    origins_like,
    schedules_calibrated,
)
from vekst.report.explorer import explorer_data
from vekst.report.housing_section import (
    explorer_housing,
    housing_covariates,
    housing_section,
)
from vekst.report.html_helpers import (
    DPI,
    FigureStore,
    ReportInputError,
    base_year,
    coord_map,
    decomposition_array,
    default_municipalities,
    projection_totals,
    read_diagnostics,
    truthy,
)
from vekst.report.i18n import STRINGS, Lang, t, tr
from vekst.report.sections_model import (
    attractiveness_section,
    coefficients_section,
    diagnostics_section,
    sources_section,
)
from vekst.report.sections_place import PlaceContext, municipality_section, national_section
from vekst.report.uncertainty_section import explorer_sources, uncertainty_section

__all__ = ["ReportInputError", "ReportOptions", "default_municipalities", "write_report"]


@dataclass
class ReportOptions:
    """What the report shows and how.

    Attributes
    ----------
    municipalities
        Codes shown as printable sections in addition to the three largest (every
        municipality is in the explorer regardless).
    title
        Page title; default the language's "Population forecast and drivers of growth".
    lang
        ``"nb"`` (Norwegian bokmål) or ``"en"``.
    diagnostics
        Overrides the diagnostics stored in ``idata.attrs`` (``Diagnostics``, dict or JSON).
    gate_overridden
        Whether the convergence gate was overridden; default read from
        ``projection.attrs`` (``converged == "no"`` or a true ``allow_unconverged``).
    top
        Units shown in the ranking figures.
    k
        Size of the top group whose membership probability is reported.
    dpi
        Resolution of the PNG figures (100 reads well on screen; 200 for print).
    backtest
        The backtest table (long format, ``docs/results/backtest_table.csv``) for the
        section "How good are these bands?"; ``None`` leaves the section out.
    backtest_notes
        The backtest's notes per origin (:func:`vekst.report.bands.read_backtest_notes`):
        with them the bands are judged by the origins made as this forecast was
        (:func:`vekst.report.bands.origins_like`); without, by every origin.
    chance_floor
        The backtest's chance floor (``backtest_chance_floor.csv``,
        :func:`vekst.evaluate.chance.chance_floor`), shown beside the age groups' errors.
    paired
        The backtest's comparison with the best other method by age group
        (``backtest_paired.csv``, :func:`vekst.evaluate.paired.best_baseline_comparison`),
        shown beside the age groups' errors.
    official
        Official projection rows (:func:`vekst.evaluate.official.read_ssb_projection`),
        drawn beside the fan chart of the municipalities they cover.
    pyramid_group
        Years of age per bar in the printable pyramids: 5 (default) or 1 for single years.
    housing_plan
        A housing plan's effect (:func:`vekst.projection.housing_uplift.uplift_plan_effect`)
        for the section "Housing plans" and the explorer; the section's coefficients are
        shown whenever the fit has ``housing_<lag>`` covariates.
    """

    municipalities: Sequence[str] | None = None
    title: str | None = None
    lang: Lang | str = Lang.en
    diagnostics: Any = None
    gate_overridden: bool | None = None
    top: int = 20
    k: int = 10
    dpi: int = DPI
    backtest: pd.DataFrame | None = None
    backtest_notes: Mapping[int, Mapping] | None = None
    chance_floor: pd.DataFrame | None = None
    paired: pd.DataFrame | None = None
    official: pd.DataFrame | None = None
    pyramid_group: int = 5
    housing_plan: xr.Dataset | None = None


def _template_text(name: str) -> str:
    return resources.files("vekst.report").joinpath("templates", name).read_text("utf-8")


def _render(context: dict[str, Any]) -> str:
    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    return env.from_string(_template_text("report.html")).render(**context)


def _script_strings(lang: Lang) -> dict[str, str]:
    strings = {key: text[lang.value] for key, text in STRINGS.items()}
    for p in (50, 80, 95):
        strings[f"band{p}"] = t("band", lang, p=p)
    return strings


def _gate(diag: dict[str, Any] | None, overridden: bool, lang: Lang) -> dict[str, Any]:
    failed = diag is not None and (bool(diag.get("problems")) or diag.get("converged") is False)
    if failed and overridden:
        headline = tr(
            lang,
            "Warning: the model did not pass the convergence gate and the forecast was made "
            "anyway (the gate was overridden). Do not use these numbers for decisions until "
            "the model has been refitted and passes.",
            "Advarsel: modellen besto ikke konvergenskontrollen, og framskrivingen ble laget "
            "likevel (kontrollen ble overstyrt). Ikke bruk tallene til beslutninger før "
            "modellen er tilpasset på nytt og består.",
        )
    elif failed:
        headline = tr(
            lang,
            "Warning: the model did not pass the convergence gate. The numbers below may be "
            "wrong; refit with more tuning and draws before using them.",
            "Advarsel: modellen besto ikke konvergenskontrollen. Tallene under kan være feil; "
            "tilpass modellen på nytt med flere trekk før de brukes.",
        )
    else:
        headline = tr(
            lang,
            "Note: this forecast was made with the convergence gate overridden. Check the "
            "diagnostics before relying on it.",
            "Merk: denne framskrivingen ble laget med konvergenskontrollen overstyrt. Se "
            "diagnostikken før du stoler på den.",
        )
    passed = (
        "Konvergenskontrollen er bestått: kjedene er enige, og sampleren utforsket modellen "
        "uten advarsler."
        if lang is Lang.nb
        else "Convergence gate passed: the chains agree and the sampler explored the model "
        "without warnings."
    )
    return {
        "known": diag is not None,
        "failed": failed,
        "overridden": overridden,
        "problems": list(diag.get("problems", [])) if diag else [],
        "headline": headline,
        "passed_text": passed,
    }


def _explorer_context(
    panel,
    projection,
    decomposition,
    options,
    lang,
    uncertainty=None,
    housing_plan=None,
    notes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The explorer's data and texts; ``notes`` are the backtest's coverage sentences
    (:func:`vekst.report.bands.coverage_notes`), empty or ``None`` without a backtest."""
    notes = notes or {}
    data = explorer_data(
        panel, projection, decomposition=decomposition, official=options.official, lang=lang
    )
    if uncertainty is not None:
        data.update(explorer_sources(uncertainty, data["units"], lang))
    if housing_plan is not None:
        data.update(explorer_housing(housing_plan, data["units"]))
    data["lang"] = lang.value
    data["strings"] = _script_strings(lang)
    data["sexes"] = [str(s) for s in projection["sex"].values] if "sex" in projection else []
    data["coverage"] = {"notes": notes} if notes else None
    ages_note = notes.get("ages")
    # "</" would end the script element early; JSON allows the escaped form.
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    return {
        "json": payload,
        "js": _template_text("explorer.js"),
        "first_name": data["units"][0]["name"],
        **{key: t(key, lang) for key in (
            "pick", "fan_title", "ages_title", "drivers_caption", "no_script",
            "sources_title", "sources_caption", "housing_title",
        )},
        "ages_caption": t("ages_caption", lang) + (f" {ages_note}" if ages_note else ""),
        "has_sources": "source_keys" in data,
        "has_housing": bool(data.get("housing")),
        "pyramid_caption": t("pyramid_caption", lang, base=data["base"]),
    }


def _first_note(panel: xr.Dataset, lang: Lang) -> str | None:
    # Only a panel that says what it lacks gets the note (the embedded data do).
    lacks = str(panel.attrs.get("lacks", ""))
    if "deaths" not in panel.data_vars or "derived" in lacks or "observed" in lacks:
        if not lacks:
            return None
        # The panel's own note is technical (and English); the sources section lists it.
        return t("derived_note", lang)
    return None


def _navigation(sections: list[dict[str, Any]], place: str, lang: Lang) -> None:
    for section in sections:
        if section.get("anchor_extra"):
            # The county charts get their own anchor inside the national section.
            for block in section["blocks"]:
                if block.get("file") == "figures/counties.png":
                    block["anchor"] = section["anchor_extra"]
        for block in section["blocks"]:
            block.setdefault("anchor", None)
        section.setdefault("nav", None)
        if section["id"].startswith("municipality-"):
            section["nav"] = section["title"].rsplit(" (", 1)[0]
        elif section["id"] == "national":
            section["nav"] = ("Norge" if lang is Lang.nb else "Norway") if place == "Norway" else (
                "Alle" if lang is Lang.nb else "All projected"
            )


def write_report(
    out_dir: str | Path,
    *,
    panel: xr.Dataset,
    idata: Any,
    ols: Any,
    projection: xr.Dataset,
    decomposition: xr.Dataset | xr.DataArray | None = None,
    options: ReportOptions | None = None,
    uncertainty: xr.Dataset | None = None,
) -> Path:
    """Write the HTML report: ``out_dir/index.html`` plus its figures and tables.

    Parameters
    ----------
    out_dir
        Folder (created when missing). Gets ``index.html`` (self-contained: figures and
        data embedded, no external references), ``figures/*.png`` and ``tables/*.csv``.
    panel
        The panel the model was fitted on (history, names, sources in ``attrs``).
    idata
        The fit (``arviz.InferenceData``) with ``posterior`` variables ``beta_mu``,
        ``beta_year``, ``attractiveness`` and optionally ``attract_region``,
        ``beta_sigma``; ``attrs`` with ``diagnostics`` (JSON) and the spec.
    ols
        :class:`vekst.models.ols.OLSResult` of the same data, or ``None`` to leave the OLS
        comparison out.
    projection
        The projection dataset (``population_total`` or ``population`` by draw, year,
        municipality; coords ``name``, ``county``, ``region`` on municipality).
    decomposition
        Growth decomposition, dims ``(draw, component, municipality, year)`` (persons per
        year), or ``None``.
    options
        What to show and how (:class:`ReportOptions`); default English, no backtest.
    uncertainty
        Variance by source (:func:`vekst.uncertainty.uncertainty_by_source`) for the
        section on where the bands come from, or ``None`` to leave it out.

    Returns
    -------
    pathlib.Path
        Path of ``index.html``.

    Raises
    ------
    ReportInputError
        If a requested municipality is not in the projection, or an input lacks what a
        section needs.
    """
    options = options or ReportOptions()
    lang = Lang(options.lang)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = FigureStore(out_dir / "figures", dpi=options.dpi, lang=lang.value)
    tables = out_dir / "tables"
    totals = projection_totals(projection)
    codes = [str(c) for c in projection["municipality"].values]
    known = set(panel["municipality"].values.astype(str))
    strangers = [c for c in codes if c not in known]
    if strangers:
        raise ReportInputError(
            f"the projection has municipalities {strangers[:10]} that the panel lacks; pass "
            "the panel the projection was made from."
        )
    if len(codes) < len(known):
        # History must cover the same municipalities as the projection it continues.
        panel = panel.sel(municipality=codes)
        place = f"The {len(codes)} projected municipalities"
    else:
        place = "Norway"
    chosen = default_municipalities(panel, projection, options.municipalities)
    if decomposition is not None:
        decomposition_array(decomposition)  # fail early on a wrong shape

    # A plan's effect is shown only beside the fit it came from (one with housing terms).
    housing_plan = options.housing_plan if housing_covariates(idata) else None
    # A band is judged by the backtest origins made as this forecast was.
    origins = (
        origins_like(options.backtest, options.backtest_notes, schedules_calibrated(projection))
        if options.backtest is not None
        else None
    )
    # One set of coverage sentences for the explorer and the printed sections.
    notes = coverage_notes(origins.table, lang, origins) if origins is not None else {}
    explorer = _explorer_context(
        panel, projection, decomposition, options, lang, uncertainty, housing_plan, notes
    )
    sections: list[dict[str, Any]] = [
        {"id": "explorer", "title": t("explorer", lang), "intro": "", "blocks": []}
    ]
    if origins is not None:
        sections.append(
            bands_section(
                band_coverage(origins.table),
                lang,
                backtest=origins.table,
                floor=options.chance_floor,
                paired=options.paired,
                origins=origins,
            )
        )
    attractiveness, municipality_ranking = attractiveness_section(
        idata, panel, figures, tables, top=options.top, k=options.k, lang=lang
    )
    ctx = PlaceContext(
        panel=panel,
        projection=projection,
        totals=totals,
        figures=figures,
        tables=tables,
        lang=lang,
        decomposition=decomposition,
        ranking=municipality_ranking,
        coverage_notes=notes,
        pyramid_group=options.pyramid_group,
        uncertainty=uncertainty,
        # Read together: the file's chunks hold every municipality, so reading the shown
        # ones one by one decompresses every chunk once per municipality (demo: 8.9 s for
        # three against 3.1 s together).
        population_cells=(
            projection["population"].sel(municipality=list(chosen)).load()
            if "population" in projection
            else None
        ),
    )
    sections.append(national_section(ctx, place))
    if uncertainty is not None:
        names = coord_map(projection, "municipality", "name") or coord_map(
            panel, "municipality", "name"
        )
        sections.append(uncertainty_section(uncertainty, names, figures, tables, lang))
    for code in chosen:
        sections.append(municipality_section(code, ctx))
    sections.append(attractiveness)
    sections.append(coefficients_section(idata, ols, figures, lang))
    housing = housing_section(
        idata,
        ols,
        housing_plan,
        coord_map(projection, "municipality", "name") or coord_map(panel, "municipality", "name"),
        lang,
    )
    if housing is not None:
        sections.append(housing)
    diag = read_diagnostics(idata, options.diagnostics)
    overridden = options.gate_overridden
    if overridden is None:
        # `vekst project` marks a projection made past a failed gate with converged = "no".
        overridden = truthy(projection.attrs.get("allow_unconverged", False)) or (
            str(projection.attrs.get("converged", "")).strip().lower() in {"no", "false", "0"}
        )
    sections.append(diagnostics_section(diag, bool(overridden), lang))
    sections.append(sources_section(panel, idata, projection, lang))
    _navigation(sections, place, lang)

    from vekst import __version__

    base = base_year(projection)
    end = int(projection["year"].max())
    footer = (
        f"Laget med vekst {__version__} {_dt.date.today().isoformat()}. Figurene ligger også "
        "som PNG-filer i mappen figures/ og tabellene som CSV i tables/."
        if lang is Lang.nb
        else f"Made with vekst {__version__} on {_dt.date.today().isoformat()}. Figures are "
        "also saved as PNG files in the folder figures/ and the tables as CSV in tables/."
    )
    context = {
        "lang": lang.value,
        "title": options.title or t("title", lang),
        "subtitle": t("subtitle", lang, base=base, end=end),
        "sections": sections,
        "gate": _gate(diag, bool(overridden), lang),
        "first_note": _first_note(panel, lang),
        "explorer": explorer,
        "footer": footer,
        "css": _template_text("report.css"),
    }
    html = _render(context)
    return atomic_write_bytes(out_dir / "index.html", html.encode("utf-8"))
