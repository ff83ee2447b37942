"""Report sections about the model: attractiveness, coefficients, diagnostics, sources."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from vekst.report import plots
from vekst.report.html_helpers import (
    base_year,
    coord_map,
    covariate_label,
    note,
    table_block,
    write_csv,
)
from vekst.report.i18n import fmt_int, fmt_signed

#: Plain words for the spec's option values (readers should not meet internal names).
PLAIN_SPEC_VALUES: dict[str, str] = {
    "student_t": "heavy-tailed (Student-t): the occasional extreme year is expected",
    "normal": "normal (Gaussian)",
    "negative_binomial": "negative binomial (counts with extra spread)",
    "poisson": "Poisson (counts)",
    "auto": "varying by year, pooled; parameterisation chosen from the data",
    "centered": "varying by year, pooled (centred parameterisation)",
    "non_centered": "varying by year, pooled (non-centred parameterisation)",
    "fixed": "the same in every year",
    "region": "labour-market region",
    "municipality": "municipality",
    "county": "county",
}


def _plain(value: Any) -> str:
    if value is None:
        return "–"
    return PLAIN_SPEC_VALUES.get(str(value), str(value).replace("_", " "))


def _posterior_names(idata: Any) -> list[str]:
    return [str(n) for n in idata.posterior.data_vars]


def _ranking_display(table: pd.DataFrame, k: int, rows: int) -> pd.DataFrame:
    top = table.sort_values("p_top_k", ascending=False, kind="stable").head(rows)
    return pd.DataFrame(
        {
            "Name": top["name"],
            "Attractiveness (% per year)": [fmt_signed(v) for v in top["mean"]],
            "94 % interval": [
                f"{fmt_signed(lo)} to {fmt_signed(hi)}"
                for lo, hi in zip(top["low"], top["high"], strict=True)
            ],
            "Rank by mean": top["rank"].astype(int),
            f"P(top {k})": [f"{p:.0%}" for p in top["p_top_k"]],
        },
        index=top.index,
    )


def attractiveness_section(idata, panel, figures, tables, *, top: int, k: int):
    posterior = idata.posterior
    blocks: list[dict[str, Any]] = []
    municipality_table = None
    levels = [
        ("attract_region", "region", "regions", coord_map(panel, "region", "region_name")),
        (
            "attractiveness",
            "municipality",
            "municipalities",
            coord_map(panel, "municipality", "name"),
        ),
    ]
    for var, dim, plural, names in levels:
        if var not in posterior:
            blocks.append(note(f"The fit has no '{var}': no ranking of {plural}."))
            continue
        draws = plots.stack_draws(posterior[var], what=var)
        if dim not in draws.dims:
            continue
        if not names and "name" in getattr(idata, "fit_data", xr.Dataset()).coords:
            names = coord_map(idata.fit_data, "municipality", "name")
        n_units = draws.sizes[dim]
        # With k units or fewer every unit is in the top k; ask about a smaller top group.
        k_level = k if n_units > k else max(1, n_units // 3)
        table = plots.ranking_table(draws, k=k_level, labels=names)
        if dim == "municipality":
            municipality_table = table
        csv_path = write_csv(tables / f"attractiveness_{plural}.csv", table.reset_index())
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
            table_block(
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


def coefficients_section(idata, ols, figures) -> dict[str, Any]:
    posterior = idata.posterior
    blocks: list[dict[str, Any]] = []
    if "beta_year" in posterior and "beta_mu" in posterior:
        covariates = [str(c) for c in posterior["covariate"].values]
        labels = {c: covariate_label(c) for c in covariates}
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
                "Bayesian pooled (mean)": fmt_signed(values.mean(), 3),
                "94 % interval": f"{fmt_signed(low, 3)} to {fmt_signed(high, 3)}",
                "Spread across years": (
                    f"{float(beta_sigma.sel(covariate=cov).mean()):.3f}"
                    if beta_sigma is not None
                    else "–"
                ),
            }
            if ols is not None and cov in set(ols.beta["covariate"].values.astype(str)):
                row["OLS pooled (s.e.)"] = (
                    f"{fmt_signed(float(ols.beta.sel(covariate=cov)), 3)} "
                    f"({float(ols.beta_se.sel(covariate=cov)):.3f})"
                )
            rows.append(row)
        blocks.append(
            table_block(
                pd.DataFrame(rows).set_index("Factor"),
                "Pooled coefficients: the change in net migration (% of population per "
                "year) for one unit more of each factor. VRA and DS are in percentage "
                "points, so 0.14 means one point more job growth brings 0.14 % more net "
                "in-migration the same year.",
            )
        )
    else:
        blocks.append(note("The fit has no year-specific coefficients (beta_year, beta_mu)."))
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


def diagnostics_section(diag: dict[str, Any] | None, overridden: bool) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    if diag is None:
        blocks.append(note("No convergence diagnostics are stored with this fit."))
    else:
        table = plots.convergence_table(diag)
        display = pd.DataFrame(
            {
                "Value": [
                    f"{v:.3f}" if name.endswith("R-hat") or name.endswith("BFMI") else fmt_int(v)
                    for name, v in table["value"].items()
                ],
                "Target": table["target"],
                "Result": ["pass" if p else "FAIL" for p in table["passed"]],
            },
            index=table.index,
        )
        display.index.name = "Check"
        blocks.append(
            table_block(
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
                note(
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


def sources_section(panel, idata, projection) -> dict[str, Any]:
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
            ", ".join(
                covariate_label(str(c))
                for c in (
                    migration.get("covariates")
                    or idata.posterior.coords.get("covariate", xr.DataArray([])).values
                )
            ),
        ),
        ("Yearly noise", _plain(migration.get("likelihood"))),
        ("Coefficients by year", _plain(migration.get("year_coefficients"))),
        (
            "Attractiveness levels",
            ", ".join(_plain(level) for level in migration.get("attractiveness", [])) or "–",
        ),
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
            f"base year {base_year(projection)}, to {int(projection['year'].max())}, "
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
            note(
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


