"""The HTML report: one self-contained ``index.html`` a planner can open offline.

Figures are embedded as base64 PNG and also written next to the page (``figures/``);
tables behind them are written as CSV (``tables/``). The page has no external
references (no scripts, fonts, style sheets or images from the network), so it can be
mailed or put on a shared drive as one file.

Sections and their ids (stable, so links and tests can rely on them):

* ``national`` (with ``counties``) -- fan charts of the national and county populations;
* ``municipality-<code>`` -- per chosen municipality: fan chart, probabilistic pyramids,
  age-group table, drivers of growth;
* ``attractiveness`` -- the barometer with intervals and top-10 probabilities;
* ``coefficients`` -- coefficients by year, pooled model vs year-by-year OLS;
* ``diagnostics`` -- convergence checks (a red banner ``gate-warning`` when the gate failed);
* ``sources`` -- data sources with attribution, and the model description.

The template is kept as a string in this module so it ships with the code without
package-data configuration.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from vekst.errors import InputError
from vekst.report import plots

__all__ = ["ReportInputError", "default_municipalities", "write_report"]

#: Years shown as pyramids when the projection reaches them.
PYRAMID_YEARS: tuple[int, ...] = (2030, 2040)

#: Plain-language names of the migration covariates.
COVARIATE_LABELS: dict[str, str] = {
    "vra_0": "Job growth (VRA), same year",
    "vra_1": "VRA, one year before",
    "vra_2": "VRA, two years before",
    "centrality": "Centrality (index / 1000)",
    "ds": "Young people entering work (DS)",
}

_DPI = 100

_DECOMPOSITION_CAPTION = (
    "Green bars are births and deaths: what the age structure alone would give at "
    "national rates, and how far the place differs from that. Blue bars are net "
    "migration explained by national immigration, centrality, job growth (own and in "
    "neighbouring municipalities where residents commute) and young people entering the "
    "labour market (DS). The orange bar is attractiveness: migration the model cannot "
    "explain by these factors. Grey is what is left (noise). The dark bar is the total; "
    "the whiskers span the middle 80 % of the posterior."
)


class ReportInputError(InputError):
    """The inputs of the report do not fit together; the message says what to change."""


# --------------------------------------------------------------------------- small helpers


def _atomic_write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        # mkstemp makes owner-only files; a report is meant to be shared.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _fmt_int(value: float) -> str:
    if not np.isfinite(value):
        return "–"
    return f"{value:,.0f}".replace(",", "\u2009")


def _fmt_signed(value: float, digits: int = 2) -> str:
    if not np.isfinite(value):
        return "–"
    return f"{value:+.{digits}f}".replace("-", "−")


def _covariate_label(name: str) -> str:
    if name in COVARIATE_LABELS:
        return COVARIATE_LABELS[name]
    match = re.fullmatch(r"vra_(own|neighbours)_(\d+)", name)
    if match:
        who = "own municipality" if match.group(1) == "own" else "neighbours"
        return f"Job growth, {who}, lag {match.group(2)}"
    return name


def _coord_map(ds: xr.Dataset | xr.DataArray, key: str, value: str) -> dict[str, str]:
    """Map one coordinate on ``municipality`` to another (e.g. region -> region_name)."""
    if key == "municipality":
        keys = ds["municipality"].values.astype(str)
    elif key in ds.coords:
        keys = ds[key].values.astype(str)
    else:
        return {}
    if value not in ds.coords:
        return {}
    return dict(zip(keys, ds[value].values.astype(str), strict=True))


@dataclass
class _FigureStore:
    """Writes figures as PNG files and keeps their base64 for embedding."""

    folder: Path
    dpi: int = _DPI
    files: list[Path] = field(default_factory=list)

    def add(self, fig: Figure, name: str, alt: str, caption: str) -> dict[str, str]:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=self.dpi)
        data = buffer.getvalue()
        path = _atomic_write(self.folder / f"{name}.png", data)
        self.files.append(path)
        return {
            "kind": "figure",
            "src": "data:image/png;base64," + base64.b64encode(data).decode("ascii"),
            "file": f"figures/{path.name}",
            "alt": alt,
            "caption": caption,
        }


def _table_block(frame: pd.DataFrame, caption: str, csv: str | None = None) -> dict[str, Any]:
    # The index becomes the first column so the table has a single header row.
    html = frame.reset_index().to_html(
        classes="data", border=0, escape=True, na_rep="–", index=False
    )
    # pandas writes inline styles on the header row; the page's CSS handles alignment.
    html = html.replace(' style="text-align: right;"', "")
    return {"kind": "table", "html": html, "caption": caption, "file": csv}


def _note(text: str) -> dict[str, str]:
    return {"kind": "note", "text": text}


# --------------------------------------------------------------------------- inputs


def _totals(projection: xr.Dataset) -> xr.DataArray:
    if "population_total" in projection:
        return projection["population_total"]
    if "population" in projection:
        return projection["population"].sum(("age", "sex"), dtype=np.float64)
    raise ReportInputError(
        "the projection has neither 'population_total' nor 'population'; pass the dataset "
        "written by `vekst project` (projection.nc)."
    )


def _base_year(projection: xr.Dataset) -> int:
    if "base_year" in projection.attrs:
        return int(projection.attrs["base_year"])
    return int(projection["year"].values[0])


def default_municipalities(
    panel: xr.Dataset, projection: xr.Dataset, chosen: Iterable[str] | None = None, n: int = 3
) -> list[str]:
    """The ``n`` largest municipalities at the base year, followed by any chosen ones.

    Parameters
    ----------
    panel
        The panel (for the base-year population).
    projection
        The projection (its municipalities and base year).
    chosen
        Codes asked for by the user (4-digit strings).
    n
        How many of the largest to include.

    Returns
    -------
    list of str
        Codes without duplicates, the largest first.

    Raises
    ------
    ReportInputError
        If a chosen code is not in the projection.
    """
    codes = [str(c) for c in projection["municipality"].values]
    chosen = [str(c).strip().zfill(4) for c in (chosen or [])]
    unknown = [c for c in chosen if c not in codes]
    if unknown:
        raise ReportInputError(
            f"municipality code(s) {unknown} are not in the projection; use 4-digit codes of "
            f"the 2024 vintage (e.g. 0301 Oslo). The projection holds {len(codes)} "
            f"municipalities ({', '.join(codes[:5])}, ...)."
        )
    base = _base_year(projection)
    sizes = _totals(projection).sel(year=base).median("draw")
    if "population" in panel and base in set(int(y) for y in panel["year"].values):
        observed = panel["population"].sel(year=base).sum(("age", "sex"))
        observed = observed.reindex(municipality=codes)
        sizes = observed.fillna(sizes)
    order = np.argsort(-np.asarray(sizes.values, dtype=float), kind="stable")
    largest = [codes[i] for i in order[:n]]
    return list(dict.fromkeys([*largest, *chosen]))


def _read_diagnostics(idata: Any, diagnostics: Any) -> dict[str, Any] | None:
    if diagnostics is not None:
        if isinstance(diagnostics, str):
            return json.loads(diagnostics)
        if hasattr(diagnostics, "as_dict"):
            return diagnostics.as_dict()
        return dict(diagnostics)
    stored = getattr(idata, "attrs", {}).get("diagnostics")
    if stored:
        return json.loads(stored) if isinstance(stored, str) else dict(stored)
    try:
        from vekst.fit import diagnose

        return diagnose(idata).as_dict()
    except (KeyError, ValueError, AttributeError, TypeError):
        return None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


def _decomposition_summary(decomposition: xr.Dataset | xr.DataArray, code: str) -> pd.DataFrame:
    """Average yearly contribution per component for one municipality (with ``total``)."""
    if isinstance(decomposition, xr.Dataset) and {"contribution", "growth"} <= set(
        decomposition.data_vars
    ):
        from vekst.decompose import decomposition_summary

        frame = decomposition_summary(decomposition.sel(municipality=[code]), by="municipality")
        return frame.set_index("component")[["mean", "q10", "q90"]]
    place = _decomposition_array(decomposition).sel(municipality=code)
    return plots.decomposition_summary(place)


def _decomposition_array(decomposition: xr.Dataset | xr.DataArray) -> xr.DataArray:
    """One DataArray (draw, component, municipality, year) from the decomposition."""
    if isinstance(decomposition, xr.DataArray):
        array = decomposition
    else:
        with_component = [
            name for name, var in decomposition.data_vars.items() if "component" in var.dims
        ]
        if with_component:
            preferred = [n for n in ("contribution", "decomposition") if n in with_component]
            array = decomposition[preferred[0] if preferred else with_component[0]]
        else:
            array = decomposition.to_dataarray("component")
    if "component" not in array.dims or "year" not in array.dims:
        raise ReportInputError(
            f"the decomposition needs dims (draw, component, municipality, year), got "
            f"{list(array.dims)}; pass the output of vekst.decompose."
        )
    return array


# --------------------------------------------------------------------------- sections


def _national_section(panel, projection, totals, figures, place: str) -> dict[str, Any]:
    base = _base_year(projection)
    history = panel["population"].sum(("municipality", "age", "sex"))
    history = history.sel(year=history["year"] <= base)
    national = totals.sum("municipality")
    blocks = [
        figures.add(
            plots.fan_chart(history, national, title=f"{place}: population on 1 January"),
            "national",
            f"Fan chart of the population of {place}",
            "The black line is the observed population. The blue line is the median "
            "projection: half of the simulated futures lie above it and half below. The "
            "dark band holds the middle 50 % of the simulated futures, the middle band 80 % "
            "and the light band 95 %. A band is a statement of uncertainty, not a range of "
            "scenarios: we expect the real population to fall outside the 80 % band in about "
            "one year out of five.",
        )
    ]
    counties = []
    if "county" in projection.coords:
        names = _coord_map(panel, "county", "county_name")
        county_totals = totals.groupby("county").sum("municipality")
        county_history = panel["population"].sum(("age", "sex")).groupby("county").sum()
        county_history = county_history.sel(year=county_history["year"] <= base)
        counties = [str(c) for c in county_totals["county"].values]
    if counties:
        ncols = 3
        nrows = int(np.ceil(len(counties) / ncols))
        fig = Figure(figsize=(12, 2.8 * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax in axes[len(counties) :]:
            ax.set_visible(False)
        for i, (ax, county) in enumerate(zip(axes, counties, strict=False)):
            history_c = (
                county_history.sel(county=county)
                if county in set(county_history["county"].values.astype(str))
                else None
            )
            plots.fan_chart(
                history_c,
                county_totals.sel(county=county),
                ax=ax,
                title=f"{names.get(county, county)} ({county})",
                ylabel="",
                legend=i == 0,
            )
            ax.set_xlabel("")
        blocks.append(
            figures.add(
                fig,
                "counties",
                "Fan charts of the county populations",
                "The same chart for each county (2024 borders). Municipalities are added up "
                "within each simulated future before the bands are drawn, so a county's band "
                "is narrower than the sum of its municipalities' bands would suggest: good "
                "and bad luck in different municipalities partly cancel.",
            )
        )
    return {
        "id": "national",
        "title": f"{place} and the counties",
        "intro": (
            f"Projected population from 1 January {base} to {int(totals['year'].max())}, "
            f"from {totals.sizes['draw']} simulated futures drawn from the fitted model."
        ),
        "blocks": blocks,
        "anchor_extra": "counties" if counties else None,
    }


def _table_years(years: Sequence[int], base: int) -> list[int]:
    years = [int(y) for y in years]
    chosen = [base] + [y for y in years if y > base and y % 5 == 0] + [years[-1]]
    return [y for y in dict.fromkeys(chosen) if y in years]


def _age_table_display(table: pd.DataFrame) -> pd.DataFrame:
    """One cell per (group, year): median and 80 % interval."""
    years = list(dict.fromkeys(table.columns.get_level_values("year")))
    display = pd.DataFrame(index=table.index)
    for year in years:
        cells = []
        for _, row in table.iterrows():
            low, mid, high = row[(year, "q10")], row[(year, "q50")], row[(year, "q90")]
            if np.isclose(low, high):
                # The base year is observed: no interval to show.
                cells.append(_fmt_int(mid))
            else:
                cells.append(f"{_fmt_int(mid)} ({_fmt_int(low)}–{_fmt_int(high)})")
        display[str(year)] = cells
    display.index.name = "Age group"
    return display


def _municipality_section(
    code: str,
    *,
    panel: xr.Dataset,
    projection: xr.Dataset,
    totals: xr.DataArray,
    decomposition: xr.Dataset | xr.DataArray | None,
    ranking: pd.DataFrame | None,
    figures: _FigureStore,
    tables: Path,
) -> dict[str, Any]:
    names = _coord_map(projection, "municipality", "name") or _coord_map(
        panel, "municipality", "name"
    )
    name = names.get(code, code)
    base = _base_year(projection)
    years = [int(y) for y in projection["year"].values]
    blocks: list[dict[str, Any]] = []

    history = None
    if code in set(panel["municipality"].values.astype(str)):
        history = panel["population"].sel(municipality=code).sum(("age", "sex"))
        history = history.sel(year=history["year"] <= base)
    blocks.append(
        figures.add(
            plots.fan_chart(history, totals.sel(municipality=code), title=f"{name}: population"),
            f"population_{code}",
            f"Fan chart of the population of {name}",
            "Observed population (black), median projection (blue line) and the bands that "
            "hold 50 %, 80 % and 95 % of the simulated futures. Small municipalities have "
            "wide bands: a few families moving make a large difference.",
        )
    )

    if "population" in projection:
        population = projection["population"].sel(municipality=code)
        observed = None
        if history is not None:
            observed = panel["population"].sel(municipality=code, year=base)
        shown = [y for y in PYRAMID_YEARS if y in years]
        if not shown:
            shown = [years[-1]]
            blocks.append(
                _note(
                    f"The projection ends in {years[-1]}, before "
                    f"{' and '.join(map(str, PYRAMID_YEARS))}; the pyramid shows {years[-1]}."
                )
            )
        for year in shown:
            blocks.append(
                figures.add(
                    plots.population_pyramid(
                        population,
                        year,
                        observed=observed,
                        observed_label=f"Observed {base}",
                        title=f"{name}: population {year}",
                    ),
                    f"pyramid_{code}_{year}",
                    f"Population pyramid of {name} in {year}",
                    f"Men to the left, women to the right, one bar per year of age. The bar is "
                    f"the median number of persons of that age in {year}; the thin whisker "
                    f"spans the middle 80 % of the simulated futures. The black outline is "
                    f"the observed population on 1 January {base}, so you can see each "
                    f"cohort move up the pyramid as it ages.",
                )
            )
        age_draws = population
    elif "population_age_group" in projection:
        age_draws = projection["population_age_group"].sel(municipality=code)
        blocks.append(
            _note(
                "The projection kept age groups only (not single years of age), so no "
                "pyramid is drawn. Rerun the projection with detail='full' for pyramids."
            )
        )
    else:
        age_draws = None
        blocks.append(_note("The projection kept totals only; no age detail is available."))

    if age_draws is not None:
        table = plots.age_group_table(age_draws, years=_table_years(years, base))
        csv_path = _atomic_write(tables / f"age_groups_{code}.csv", table.to_csv().encode("utf-8"))
        blocks.append(
            _table_block(
                _age_table_display(table),
                "Persons by age group (both sexes). Each cell is the median with the 80 % "
                "interval in brackets: in 8 of 10 simulated futures the number lies in that "
                "range. Groups follow kindergarten (1-5), primary school (6-12), lower "
                "secondary (13-15), upper secondary (16-19) and elderly care (67+). The "
                "interval of the total is that of the total itself, not the sum of the "
                "groups' intervals.",
                csv=f"tables/{csv_path.name}",
            )
        )

    if decomposition is not None:
        contribution = _decomposition_array(decomposition)
        if code in set(contribution["municipality"].values.astype(str)):
            summary = _decomposition_summary(decomposition, code)
            place_years = contribution["year"].values
            first, last = int(place_years.min()), int(place_years.max())
            period = "observed years" if last < base else "projected years"
            blocks.append(
                figures.add(
                    plots.decomposition_chart(
                        summary, title=f"{name}: drivers of growth, {first}-{last}"
                    ),
                    f"decomposition_{code}",
                    f"Drivers of population growth in {name}",
                    f"Average yearly change in persons over the {period} {first}-{last}, "
                    "split into its drivers. " + _DECOMPOSITION_CAPTION,
                )
            )
        else:
            blocks.append(_note(f"The decomposition does not include {name} ({code})."))

    intro = f"Municipality {code}, {name}."
    if ranking is not None and code in ranking.index:
        row = ranking.loc[code]
        intro += (
            f" Attractiveness {_fmt_signed(row['mean'])} % of the population per year "
            f"(94 % interval {_fmt_signed(row['low'])} to {_fmt_signed(row['high'])}), rank "
            f"{int(row['rank'])} of {len(ranking)}; probability of being among the "
            f"{ranking.attrs.get('k', 10)} most attractive: {row['p_top_k']:.0%}."
        )
    return {
        "id": f"municipality-{code}",
        "title": f"{name} ({code})",
        "intro": intro,
        "blocks": blocks,
    }


def _posterior_names(idata: Any) -> list[str]:
    return [str(n) for n in idata.posterior.data_vars]


def _ranking_display(table: pd.DataFrame, k: int, rows: int) -> pd.DataFrame:
    top = table.sort_values("p_top_k", ascending=False, kind="stable").head(rows)
    return pd.DataFrame(
        {
            "Name": top["name"],
            "Attractiveness (% per year)": [_fmt_signed(v) for v in top["mean"]],
            "94 % interval": [
                f"{_fmt_signed(lo)} to {_fmt_signed(hi)}"
                for lo, hi in zip(top["low"], top["high"], strict=True)
            ],
            "Rank by mean": top["rank"].astype(int),
            f"P(top {k})": [f"{p:.0%}" for p in top["p_top_k"]],
        },
        index=top.index,
    )


def _attractiveness_section(idata, panel, figures, tables, *, top: int, k: int):
    posterior = idata.posterior
    blocks: list[dict[str, Any]] = []
    municipality_table = None
    levels = [
        ("attract_region", "region", "regions", _coord_map(panel, "region", "region_name")),
        (
            "attractiveness",
            "municipality",
            "municipalities",
            _coord_map(panel, "municipality", "name"),
        ),
    ]
    for var, dim, plural, names in levels:
        if var not in posterior:
            blocks.append(_note(f"The fit has no '{var}': no ranking of {plural}."))
            continue
        draws = plots.stack_draws(posterior[var], what=var)
        if dim not in draws.dims:
            continue
        if not names and "name" in getattr(idata, "fit_data", xr.Dataset()).coords:
            names = _coord_map(idata.fit_data, "municipality", "name")
        n_units = draws.sizes[dim]
        # With k units or fewer every unit is in the top k; ask about a smaller top group.
        k_level = k if n_units > k else max(1, n_units // 3)
        table = plots.ranking_table(draws, k=k_level, labels=names)
        if dim == "municipality":
            municipality_table = table
        csv_path = _atomic_write(
            tables / f"attractiveness_{plural}.csv", table.to_csv().encode("utf-8")
        )
        blocks.append(
            figures.add(
                plots.attractiveness_ranking(
                    draws,
                    top=top,
                    labels=names,
                    title=f"The {min(top, len(table))} most attractive {plural}",
                ),
                f"attractiveness_{plural}",
                f"Attractiveness ranking of {plural}",
                f"Each dot is a {dim}'s attractiveness: net migration in % of its population "
                "per year beyond what national immigration, job growth, centrality and the "
                "inflow of young people into work explain. The line is the 94 % interval. "
                "Green: clearly above the average; red: clearly below; grey: the data cannot "
                "tell the sign. Where intervals overlap, the order of two places is not "
                "certain.",
            )
        )
        blocks.append(
            _table_block(
                _ranking_display(table, k_level, rows=15),
                f"The {plural} most likely to be among the {k_level} most attractive. The "
                f"probability counts the share of posterior draws in which the {dim} ranks "
                f"in the top {k_level}; it says how sure a top-{k_level} placing is. "
                f"All {len(table)} "
                f"{plural} are in the CSV file.",
                csv=f"tables/{csv_path.name}",
            )
        )
    section = {
        "id": "attractiveness",
        "title": "Attractiveness: the barometer with error bars",
        "intro": (
            "Attractiveness (bostedsattraktivitet) is the part of net migration the model "
            "does not explain by jobs, centrality or demography: people moving to or staying "
            "in a place for other reasons (housing, services, surroundings). A municipality's "
            "value includes its region's. Estimates of small places are pulled towards their "
            "region, because a few years of migration in a small place are mostly noise."
        ),
        "blocks": blocks,
    }
    return section, municipality_table


def _coefficients_section(idata, ols, figures) -> dict[str, Any]:
    posterior = idata.posterior
    blocks: list[dict[str, Any]] = []
    if "beta_year" in posterior and "beta_mu" in posterior:
        covariates = [str(c) for c in posterior["covariate"].values]
        labels = {c: _covariate_label(c) for c in covariates}
        ols_year = ols.beta_year if ols is not None else None
        if ols_year is None:
            ols_year = xr.full_like(posterior["beta_year"].isel(chain=0, draw=0, drop=True), np.nan)
        observed = None
        fit_data = getattr(idata, "fit_data", None)
        if fit_data is not None and "x_available" in fit_data:
            observed = fit_data["x_available"].any("municipality")
        blocks.append(
            figures.add(
                plots.coefficient_plot(
                    posterior["beta_year"],
                    posterior["beta_mu"],
                    ols_year,
                    ols_beta_year_se=None if ols is None else ols.beta_year_se,
                    labels=labels,
                    observed=observed,
                ),
                "coefficients",
                "Coefficients by year: Bayesian model against year-by-year OLS",
                "One panel per explanatory factor. Open squares: the coefficient estimated "
                "separately for each year by ordinary least squares, as in the published "
                "model (bars: 95 % confidence interval). Blue dots: the Bayesian model, "
                "which lets each year differ but pulls the years towards a common value "
                "(bars: 94 % interval). Grey band: that common value. Grey dots mark "
                "years without data for that factor (job data start later than population "
                "data): there the model only repeats what the other years say. Where OLS "
                "jumps from year to year, the Bayesian estimates are steadier.",
            )
        )
        beta_mu = plots.stack_draws(posterior["beta_mu"], what="beta_mu")
        beta_sigma = (
            plots.stack_draws(posterior["beta_sigma"], what="beta_sigma")
            if "beta_sigma" in posterior
            else None
        )
        rows = []
        for cov in covariates:
            values = np.asarray(beta_mu.sel(covariate=cov).values, dtype=float)
            low, high = np.quantile(values, [0.03, 0.97])
            row = {
                "Factor": labels[cov],
                "Bayesian pooled (mean)": _fmt_signed(values.mean(), 3),
                "94 % interval": f"{_fmt_signed(low, 3)} to {_fmt_signed(high, 3)}",
                "Spread across years": (
                    f"{float(beta_sigma.sel(covariate=cov).mean()):.3f}"
                    if beta_sigma is not None
                    else "–"
                ),
            }
            if ols is not None and cov in set(ols.beta["covariate"].values.astype(str)):
                row["OLS pooled (s.e.)"] = (
                    f"{_fmt_signed(float(ols.beta.sel(covariate=cov)), 3)} "
                    f"({float(ols.beta_se.sel(covariate=cov)):.3f})"
                )
            rows.append(row)
        blocks.append(
            _table_block(
                pd.DataFrame(rows).set_index("Factor"),
                "Pooled coefficients: the change in net migration (% of population per "
                "year) for one unit more of each factor. VRA and DS are in percentage "
                "points, so 0.14 means one point more job growth brings 0.14 % more net "
                "in-migration the same year.",
            )
        )
    else:
        blocks.append(_note("The fit has no year-specific coefficients (beta_year, beta_mu)."))
    return {
        "id": "coefficients",
        "title": "What drives migration: coefficients by year",
        "intro": (
            "The model explains net migration by job growth where residents work (this "
            "year and the two years before), centrality and the number of young people "
            "entering the labour market. These charts compare its estimates with the "
            "published method (ordinary least squares, one year at a time)."
        ),
        "blocks": blocks,
    }


def _diagnostics_section(diag: dict[str, Any] | None, overridden: bool) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    if diag is None:
        blocks.append(_note("No convergence diagnostics are stored with this fit."))
    else:
        table = plots.diagnostics_table(diag)
        display = pd.DataFrame(
            {
                "Value": [
                    f"{v:.3f}" if name.endswith("R-hat") or name.endswith("BFMI") else _fmt_int(v)
                    for name, v in table["value"].items()
                ],
                "Target": table["target"],
                "Result": ["pass" if p else "FAIL" for p in table["passed"]],
            },
            index=table.index,
        )
        display.index.name = "Check"
        blocks.append(
            _table_block(
                display,
                "R-hat compares the sampler's independent chains: values above 1.01 mean "
                "they disagree and the results are not yet reliable. ESS (effective sample "
                "size) is how many independent draws the chains are worth; below 400 the "
                "bands are themselves uncertain. Divergent transitions and a low BFMI "
                "signal that the sampler could not explore the model properly.",
            )
        )
        worst = diag.get("worst") or {}
        if worst:
            blocks.append(
                _note(
                    "Slowest-mixing parameters: "
                    + ", ".join(f"{k}: {v}" for k, v in worst.items() if v)
                    + "."
                )
            )
    return {
        "id": "diagnostics",
        "title": "Diagnostics: can the results be trusted?",
        "intro": (
            "The fit passed the convergence gate."
            if diag is not None and not diag.get("problems") and not overridden
            else "Checks of the sampler that produced the posterior."
        ),
        "blocks": blocks,
    }


def _sources_section(panel, idata, projection) -> dict[str, Any]:
    attrs = getattr(idata, "attrs", {})
    spec: dict[str, Any] = {}
    if attrs.get("spec"):
        try:
            spec = json.loads(attrs["spec"])
        except (TypeError, ValueError):
            spec = {}
    migration = spec.get("migration", {}) if isinstance(spec, dict) else {}
    model_rows = [
        ("Model", f"{spec.get('name', 'unnamed')}: {spec.get('description', '')}".strip(": ")),
        (
            "Explanatory factors",
            ", ".join(migration.get("covariates", []))
            or ", ".join(
                map(str, idata.posterior.coords.get("covariate", xr.DataArray([])).values)
            ),
        ),
        ("Likelihood", str(migration.get("likelihood", "–"))),
        ("Year coefficients", str(migration.get("year_coefficients", "–"))),
        ("Attractiveness levels", ", ".join(migration.get("attractiveness", [])) or "–"),
        ("Sampler", f"{attrs.get('sampler', '–')} (seed {attrs.get('seed', '–')})"),
        (
            "Posterior draws",
            f"{idata.posterior.sizes.get('chain', 1)} chains × "
            f"{idata.posterior.sizes.get('draw', 0)} draws",
        ),
        ("Spec hash / data hash", f"{attrs.get('spec_hash', '–')} / {attrs.get('data_hash', '–')}"),
        (
            "vekst version (fit / projection)",
            f"{attrs.get('vekst_version', '–')} / {projection.attrs.get('vekst_version', '–')}",
        ),
        (
            "Projection",
            f"base year {_base_year(projection)}, to {int(projection['year'].max())}, "
            f"{projection.sizes.get('draw', 0)} simulated futures, scenario "
            f"'{projection.attrs.get('scenario_name', 'baseline')}', seed "
            f"{projection.attrs.get('seed', '–')}",
        ),
    ]
    data_rows = [
        (key.replace("_", " ").capitalize(), str(panel.attrs[key]))
        for key in ("title", "sources", "licence", "derived_on_load", "lacks", "code_vintage")
        if key in panel.attrs
    ]
    return {
        "id": "sources",
        "title": "Data sources and the model",
        "intro": "",
        "blocks": [
            {
                "kind": "attribution",
                "items": [
                    "Population, employment, commuting and centrality: Statistisk "
                    "sentralbyrå (Statistics Norway, SSB), published under the Norwegian "
                    "Licence for Open Government Data (NLOD 2.0) / CC BY 4.0. Source: "
                    "Statistisk sentralbyrå.",
                    "National mortality: Human Mortality Database (HMD), Max Planck "
                    "Institute for Demographic Research, University of California, Berkeley, "
                    "and French Institute for Demographic Studies; CC BY 4.0.",
                    "National fertility: Human Fertility Database (HFD), Max Planck Institute "
                    "for Demographic Research and Vienna Institute of Demography; CC BY 4.0.",
                    "Model: the attractiveness model of K. Vareide (Telemarksforsking, "
                    "\u201cDrivkrefter for flytting\u201d, 2019/2022), re-estimated as a "
                    "Bayesian hierarchical model by vekst.",
                ],
            },
            {"kind": "definitions", "title": "The data used", "rows": data_rows},
            {"kind": "definitions", "title": "The model and the run", "rows": model_rows},
            _note(
                "Method in brief. Growth = births − deaths + net migration. Expected births "
                "and deaths apply national age-specific rates to the municipality's own age "
                "structure; the deviations from them are estimated per municipality and "
                "pulled towards the region. Net migration (% of the population) depends on "
                "national immigration in the year, weighted job growth where residents work "
                "(this year and two years back), centrality, the inflow of young people into "
                "work (DS) and the municipality's attractiveness. Coefficients may vary by "
                "year but are pooled across years. The projection runs a cohort-component "
                "model for every simulated future, drawing parameters from the posterior "
                "and new yearly shocks, so the bands carry both kinds of uncertainty."
            ),
        ],
    }


# --------------------------------------------------------------------------- template

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
       color: #222; margin: 0; background: #fafafa; line-height: 1.45; }
header { background: #0b5394; color: #fff; padding: 1.2rem 2rem; }
header h1 { margin: 0 0 .3rem 0; font-size: 1.6rem; }
header p { margin: 0; opacity: .9; }
nav { background: #fff; border-bottom: 1px solid #ddd; padding: .5rem 2rem;
      position: sticky; top: 0; z-index: 1; }
nav a { margin-right: 1rem; color: #0b5394; text-decoration: none; font-size: .95rem; }
main { max-width: 1100px; margin: 0 auto; padding: 1rem 2rem 3rem 2rem; }
section { background: #fff; border: 1px solid #e3e3e3; border-radius: 6px;
          padding: 1rem 1.5rem; margin: 1.2rem 0; }
h2 { color: #0b5394; margin-top: .2rem; }
figure { margin: 1rem 0 1.6rem 0; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption, .caption { font-size: .92rem; color: #444; max-width: 60rem; margin-top: .4rem; }
.file { font-size: .8rem; color: #777; }
table.data { border-collapse: collapse; font-size: .88rem; margin: .5rem 0; }
table.data th, table.data td { padding: .25rem .6rem; border-bottom: 1px solid #e6e6e6;
                               text-align: right; white-space: nowrap; }
table.data th:first-child, table.data td:first-child { text-align: left; }
table.data thead th { background: #f0f4f8; }
.tablewrap { overflow-x: auto; }
.banner { background: #b2182b; color: #fff; padding: 1rem 1.5rem; border-radius: 6px;
          margin: 1rem 0; font-weight: 600; }
.banner ul { margin: .4rem 0 0 1.2rem; font-weight: 400; }
.ok { background: #e7f4ea; border: 1px solid #1b7837; color: #1b4d2b; padding: .6rem 1rem;
      border-radius: 6px; }
.note { background: #f6f6f6; border-left: 4px solid #999; padding: .5rem 1rem;
        font-size: .92rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; font-size: .9rem; }
dt { font-weight: 600; }
dd { margin: 0; }
footer { text-align: center; color: #777; font-size: .8rem; padding: 1rem; }
@media print { nav { display: none; } section { break-inside: avoid-page; } }
</style>
</head>
<body>
<header>
<h1>{{ title }}</h1>
<p>{{ subtitle }}</p>
</header>
<nav>
{% for s in sections %}<a href="#{{ s.id }}">{{ s.nav or s.title }}</a>{% endfor %}
</nav>
<main>
{% if gate.failed or gate.overridden %}
<div class="banner" id="gate-warning" role="alert">
{{ gate.headline }}
{% if gate.problems %}<ul>{% for p in gate.problems %}<li>{{ p }}</li>{% endfor %}</ul>{% endif %}
</div>
{% endif %}
{% for s in sections %}
<section id="{{ s.id }}">
<h2>{{ s.title }}</h2>
{% if s.id == "diagnostics" %}
{% if gate.failed or gate.overridden %}
<div class="banner" role="alert">{{ gate.headline }}</div>
{% elif gate.known %}
<p class="ok">Convergence gate passed: the chains agree and the sampler explored the model
without warnings.</p>
{% endif %}
{% endif %}
{% if s.intro %}<p>{{ s.intro }}</p>{% endif %}
{% for b in s.blocks %}
{% if b.kind == "figure" %}
{% if b.anchor %}<span id="{{ b.anchor }}"></span>{% endif %}
<figure>
<img src="{{ b.src }}" alt="{{ b.alt }}">
<figcaption>{{ b.caption }} <span class="file">({{ b.file }})</span></figcaption>
</figure>
{% elif b.kind == "table" %}
<div class="tablewrap">{{ b.html | safe }}</div>
<p class="caption">{{ b.caption }}
{% if b.file %}<span class="file">({{ b.file }})</span>{% endif %}</p>
{% elif b.kind == "note" %}
<p class="note">{{ b.text }}</p>
{% elif b.kind == "attribution" %}
<ul>{% for item in b["items"] %}<li>{{ item }}</li>{% endfor %}</ul>
{% elif b.kind == "definitions" %}
<h3>{{ b.title }}</h3>
<dl>{% for k, v in b.rows %}<dt>{{ k }}</dt><dd>{{ v }}</dd>{% endfor %}</dl>
{% endif %}
{% endfor %}
</section>
{% endfor %}
</main>
<footer>Made with vekst {{ version }} on {{ generated }}. Figures are also saved as PNG files
in the folder <code>figures/</code> and the tables as CSV in <code>tables/</code>.</footer>
</body>
</html>
"""


def _render(context: Mapping[str, Any]) -> str:
    env = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    return env.from_string(_TEMPLATE).render(**context)


# --------------------------------------------------------------------------- entry point


def write_report(
    out_dir: str | Path,
    *,
    panel: xr.Dataset,
    idata: Any,
    ols: Any,
    projection: xr.Dataset,
    decomposition: xr.Dataset | xr.DataArray | None = None,
    municipalities: Iterable[str] | None = None,
    title: str = "Population forecast and drivers of growth",
    diagnostics: Any = None,
    gate_overridden: bool | None = None,
    top: int = 20,
    k: int = 10,
    dpi: int = _DPI,
) -> Path:
    """Write the HTML report: ``out_dir/index.html`` plus its figures and tables.

    Parameters
    ----------
    out_dir
        Folder (created when missing). Gets ``index.html`` (self-contained: figures
        embedded, no external references), ``figures/*.png`` and ``tables/*.csv``.
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
    municipalities
        Codes to show in detail in addition to the three largest.
    title
        Page title.
    diagnostics
        Overrides the diagnostics stored in ``idata.attrs`` (``Diagnostics``, dict or JSON).
    gate_overridden
        Whether the convergence gate was overridden for this projection; default read from
        ``projection.attrs`` (``converged == "no"`` as written by ``vekst project``, or a
        true ``allow_unconverged``).
    top
        Units shown in the ranking figures.
    k
        Size of the top group whose membership probability is reported (smaller when
        there are no more than ``k`` units).
    dpi
        Resolution of the PNG figures (100 reads well on screen; 200 for print).

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
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = _FigureStore(out_dir / "figures", dpi=dpi)
    tables = out_dir / "tables"
    totals = _totals(projection)
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
    chosen = default_municipalities(panel, projection, municipalities)
    if decomposition is not None:
        _decomposition_array(decomposition)  # fail early on a wrong shape

    sections = [_national_section(panel, projection, totals, figures, place)]
    attractiveness, municipality_ranking = _attractiveness_section(
        idata, panel, figures, tables, top=top, k=k
    )
    for code in chosen:
        sections.append(
            _municipality_section(
                code,
                panel=panel,
                projection=projection,
                totals=totals,
                decomposition=decomposition,
                ranking=municipality_ranking,
                figures=figures,
                tables=tables,
            )
        )
    sections.append(attractiveness)
    sections.append(_coefficients_section(idata, ols, figures))
    diag = _read_diagnostics(idata, diagnostics)
    if gate_overridden is None:
        # `vekst project` marks a projection made past a failed gate with converged = "no".
        gate_overridden = _truthy(projection.attrs.get("allow_unconverged", False)) or (
            str(projection.attrs.get("converged", "")).strip().lower() in {"no", "false", "0"}
        )
    failed = diag is not None and (bool(diag.get("problems")) or diag.get("converged") is False)
    sections.append(_diagnostics_section(diag, bool(gate_overridden)))
    sections.append(_sources_section(panel, idata, projection))
    for section in sections:
        if section.get("anchor_extra"):
            # The county charts get their own anchor inside the national section.
            for block in section["blocks"]:
                if block.get("file") == "figures/counties.png":
                    block["anchor"] = section["anchor_extra"]
        for block in section["blocks"]:
            block.setdefault("anchor", None)
        section.setdefault("nav", None)
    for section in sections:
        if section["id"].startswith("municipality-"):
            section["nav"] = section["title"].rsplit(" (", 1)[0]
    sections[0]["nav"] = "Norway" if place == "Norway" else "All projected"

    if failed and gate_overridden:
        headline = (
            "Warning: the model did not pass the convergence gate and the forecast was made "
            "anyway (the gate was overridden). Do not use these numbers for decisions until "
            "the model has been refitted and passes."
        )
    elif failed:
        headline = (
            "Warning: the model did not pass the convergence gate. The numbers below may be "
            "wrong; refit with more tuning and draws before using them."
        )
    else:
        headline = (
            "Note: this forecast was made with the convergence gate overridden. Check the "
            "diagnostics before relying on it."
        )
    gate = {
        "known": diag is not None,
        "failed": failed,
        "overridden": bool(gate_overridden),
        "problems": list(diag.get("problems", [])) if diag else [],
        "headline": headline,
    }
    from vekst import __version__

    base = _base_year(projection)
    context = {
        "title": title,
        "subtitle": (
            f"Projection from 1 January {base} to {int(projection['year'].max())} with "
            f"uncertainty bands; {len(chosen)} municipalities in detail."
        ),
        "sections": sections,
        "gate": gate,
        "version": __version__,
        "generated": _dt.date.today().isoformat(),
    }
    html = _render(context)
    return _atomic_write(out_dir / "index.html", html.encode("utf-8"))
