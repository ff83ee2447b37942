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
from vekst.report.i18n import Lang, fmt_int, fmt_signed, tr

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


def _ranking_display(table: pd.DataFrame, k: int, rows: int, lang: Lang) -> pd.DataFrame:
    top = table.sort_values("p_top_k", ascending=False, kind="stable").head(rows)
    to = tr(lang, "to", "til")
    return pd.DataFrame(
        {
            tr(lang, "Name", "Navn"): top["name"],
            tr(lang, "Attractiveness (% per year)", "Attraktivitet (% per år)"): [
                fmt_signed(v, 2, lang) for v in top["mean"]
            ],
            tr(lang, "94 % interval", "94 %-intervall"): [
                f"{fmt_signed(lo, 2, lang)} {to} {fmt_signed(hi, 2, lang)}"
                for lo, hi in zip(top["low"], top["high"], strict=True)
            ],
            tr(lang, "Rank by mean", "Rangering"): top["rank"].astype(int),
            tr(lang, f"P(top {k})", f"P(topp {k})"): [f"{100 * p:.0f} %" for p in top["p_top_k"]],
        },
        index=top.index,
    )


def attractiveness_section(idata, panel, figures, tables, *, top: int, k: int, lang=Lang.en):
    """The barometer: rankings of regions and municipalities with their intervals."""
    lang = Lang(lang)
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
    plural_nb = {"regions": "regioner", "municipalities": "kommuner"}
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
        csv_path = write_csv(
            tables / f"attractiveness_{plural}.csv", table.reset_index(), lang.value
        )
        blocks.append(
            figures.add(
                plots.attractiveness_ranking(
                    draws,
                    top=top,
                    labels=names,
                    title=tr(
                        lang,
                        f"The {min(top, len(table))} most attractive {plural}",
                        f"De {min(top, len(table))} mest attraktive {plural_nb[plural]}",
                    ),
                    units=tr(
                        lang,
                        "Net migration beyond what jobs, centrality and DS explain (% per year)",
                        "Nettoflytting utover det jobber, sentralitet og DS forklarer (% per år)",
                    ),
                ),
                f"attractiveness_{plural}",
                tr(
                    lang,
                    f"Attractiveness ranking of {plural}",
                    f"Rangering av {plural_nb[plural]} etter attraktivitet",
                ),
                tr(
                    lang,
                    f"Each dot is a {dim}'s attractiveness: net migration in % of its "
                    "population per year beyond what national immigration, job growth, "
                    "centrality and the inflow of young people into work explain. The line is "
                    "the 94 % interval. Green: clearly above the average; red: clearly below; "
                    "grey: the data cannot tell the sign. Where intervals overlap, the order "
                    "of two places is not certain.",
                    "Hvert punkt er attraktiviteten: nettoflytting i % av folketallet per år "
                    "utover det innvandring, arbeidsplassvekst, sentralitet og unge som går "
                    "inn i arbeidslivet forklarer. Streken er 94 %-intervallet. Grønt: klart "
                    "over gjennomsnittet; rødt: klart under; grått: dataene kan ikke avgjøre "
                    "fortegnet. Der intervallene overlapper, er rekkefølgen usikker.",
                ),
            )
        )
        blocks.append(
            table_block(
                _ranking_display(table, k_level, rows=15, lang=lang),
                tr(
                    lang,
                    f"The {plural} most likely to be among the {k_level} most attractive. The "
                    f"probability counts the share of posterior draws in which the {dim} "
                    f"ranks in the top {k_level}; it says how sure a top-{k_level} placing "
                    f"is. All {len(table)} {plural} are in the CSV file.",
                    f"De {plural_nb[plural]} som mest sannsynlig er blant de {k_level} mest "
                    "attraktive. Sannsynligheten er andelen av trekkene fra "
                    f"posteriorfordelingen der enheten er blant de {k_level} øverste; den sier "
                    f"hvor sikker plasseringen er. Alle {len(table)} {plural_nb[plural]} står "
                    "i CSV-filen.",
                ),
                csv=f"tables/{csv_path.name}",
            )
        )
    section = {
        "id": "attractiveness",
        "title": tr(
            lang,
            "Attractiveness: the barometer with error bars",
            "Attraktivitet: barometeret med usikkerhet",
        ),
        "intro": tr(
            lang,
            "Attractiveness (bostedsattraktivitet) is the part of net migration the model "
            "does not explain by jobs, centrality or demography: people moving to or staying "
            "in a place for other reasons (housing, services, surroundings). A municipality's "
            "value includes its region's. Estimates of small places are pulled towards their "
            "region, because a few years of migration in a small place are mostly noise.",
            "Bostedsattraktivitet er den delen av nettoflyttingen modellen ikke forklarer med "
            "arbeidsplasser, sentralitet eller demografi: folk som flytter til eller blir "
            "boende av andre grunner (bolig, tjenester, omgivelser). En kommunes verdi "
            "inkluderer regionens. Anslagene for små steder trekkes mot regionen, fordi noen "
            "få års flytting i et lite sted for det meste er tilfeldig variasjon.",
        ),
        "blocks": blocks,
    }
    return section, municipality_table


def coefficients_section(idata, ols, figures, lang: Lang = Lang.en) -> dict[str, Any]:
    """Coefficients by year: the Bayesian model beside year-by-year OLS."""
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
                tr(
                    lang,
                    "Coefficients by year: Bayesian model against year-by-year OLS",
                    "Koeffisienter per år: bayesiansk modell mot OLS år for år",
                ),
                tr(
                    lang,
                    "One panel per explanatory factor. Open squares: the coefficient estimated "
                    "separately for each year by ordinary least squares, as in the published "
                    "model (bars: 95 % confidence interval). Blue dots: the Bayesian model, "
                    "which lets each year differ but pulls the years towards a common value "
                    "(bars: 94 % interval). Grey band: that common value. Grey dots mark "
                    "years without data for that factor (job data start later than population "
                    "data): there the model only repeats what the other years say. Where OLS "
                    "jumps from year to year, the Bayesian estimates are steadier.",
                    "Ett panel per forklaringsfaktor. Åpne firkanter: koeffisienten estimert for "
                    "hvert år for seg med minste kvadraters metode (OLS), som i den publiserte "
                    "modellen (streker: 95 % konfidensintervall). Blå punkter: den bayesianske "
                    "modellen, som lar årene variere men trekker dem mot en felles verdi "
                    "(streker: 94 %-intervall). Grått bånd: den felles verdien. Grå punkter er år "
                    "uten data for faktoren (sysselsettingsdata starter senere enn "
                    "befolkningsdata): der gjentar modellen bare det de andre årene sier. Der OLS "
                    "hopper fra år til år, er de bayesianske anslagene stødigere.",
                ),
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
                tr(lang, "Bayesian pooled (mean)", "Bayesiansk felles (snitt)"): fmt_signed(
                    values.mean(), 3, lang
                ),
                tr(lang, "94 % interval", "94 %-intervall"): (
                    f"{fmt_signed(low, 3, lang)} {tr(lang, 'to', 'til')} "
                    f"{fmt_signed(high, 3, lang)}"
                ),
                tr(lang, "Spread across years", "Spredning mellom år"): (
                    f"{float(beta_sigma.sel(covariate=cov).mean()):.3f}"
                    if beta_sigma is not None
                    else "–"
                ),
            }
            if ols is not None and cov in set(ols.beta["covariate"].values.astype(str)):
                row[tr(lang, "OLS pooled (s.e.)", "OLS felles (s.f.)")] = (
                    f"{fmt_signed(float(ols.beta.sel(covariate=cov)), 3, lang)} "
                    f"({float(ols.beta_se.sel(covariate=cov)):.3f})"
                )
            rows.append(row)
        blocks.append(
            table_block(
                pd.DataFrame(rows).set_index("Factor").rename_axis(tr(lang, "Factor", "Faktor")),
                tr(
                    lang,
                    "Pooled coefficients: the change in net migration (% of population per "
                    "year) for one unit more of each factor. VRA and DS are in percentage "
                    "points, so 0.14 means one point more job growth brings 0.14 % more net "
                    "in-migration the same year.",
                    "Felles koeffisienter: endringen i nettoflytting (% av folketallet per år) for "
                    "én enhet mer av hver faktor. VRA og DS er i prosentpoeng, så 0,14 betyr at "
                    "ett poeng mer arbeidsplassvekst gir 0,14 % mer netto innflytting samme år.",
                ),
            )
        )
    else:
        blocks.append(note("The fit has no year-specific coefficients (beta_year, beta_mu)."))
    return {
        "id": "coefficients",
        "title": tr(
            lang,
            "What drives migration: coefficients by year",
            "Hva driver flyttingen: koeffisienter per år",
        ),
        "intro": tr(
            lang,
            "The model explains net migration by job growth where residents work (this "
            "year and the two years before), centrality and the number of young people "
            "entering the labour market. These charts compare its estimates with the "
            "published method (ordinary least squares, one year at a time).",
            "Modellen forklarer nettoflytting med arbeidsplassvekst der innbyggerne jobber "
            "(i år og de to foregående årene), sentralitet og antallet unge som går inn i "
            "arbeidslivet. Diagrammene sammenligner anslagene med den publiserte metoden "
            "(minste kvadraters metode, ett år om gangen).",
        ),
        "blocks": blocks,
    }


def diagnostics_section(
    diag: dict[str, Any] | None, overridden: bool, lang: Lang = Lang.en
) -> dict[str, Any]:
    """Convergence checks of the sampler, explained."""
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
                tr(
                    lang,
                    "R-hat compares the sampler's independent chains: values above 1.01 mean "
                    "they disagree and the results are not yet reliable. ESS (effective "
                    "sample size) is how many independent draws the chains are worth; below "
                    "400 the bands are themselves uncertain. Divergent transitions and a low "
                    "BFMI signal that the sampler could not explore the model properly.",
                    "R-hat sammenligner samplerens uavhengige kjeder: verdier over 1,01 betyr "
                    "at de er uenige og at resultatene ennå ikke er pålitelige. ESS (effektiv "
                    "utvalgsstørrelse) er hvor mange uavhengige trekk kjedene er verdt; under "
                    "400 er intervallene selv usikre. Divergente overganger og lav BFMI viser "
                    "at sampleren ikke klarte å utforske modellen ordentlig.",
                ),
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
        "title": tr(
            lang,
            "Diagnostics: can the results be trusted?",
            "Diagnostikk: kan resultatene stoles på?",
        ),
        "intro": (
            tr(lang, "The fit passed the convergence gate.", "Tilpasningen besto kontrollen.")
            if diag is not None and not diag.get("problems") and not overridden
            else tr(
                lang,
                "Checks of the sampler that produced the posterior.",
                "Kontroller av sampleren som laget posteriorfordelingen.",
            )
        ),
        "blocks": blocks,
    }


def sources_section(panel, idata, projection, lang: Lang = Lang.en) -> dict[str, Any]:
    """Data sources with attribution, the model and the run."""
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
        "title": tr(lang, "Data sources and the model", "Datakilder og modellen"),
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
                tr(
                    lang,
                    "Method in brief. Growth = births − deaths + net migration. Expected births "
                    "and deaths apply national age-specific rates to the municipality's own age "
                    "structure; the deviations from them are estimated per municipality and "
                    "pulled towards the region. Net migration (% of the population) depends on "
                    "national immigration in the year, weighted job growth where residents work "
                    "(this year and two years back), centrality, the inflow of young people into "
                    "work (DS) and the municipality's attractiveness. Coefficients may vary by "
                    "year but are pooled across years. The projection runs a cohort-component "
                    "model for every simulated future, drawing parameters from the posterior "
                    "and new yearly shocks, so the bands carry both kinds of uncertainty.",
                    "Metoden kort. Vekst = fødte − døde + nettoflytting. Forventede fødsler og "
                    "dødsfall får en ved å bruke nasjonale aldersspesifikke rater på kommunens "
                    "egen alderssammensetning; avvikene fra dem anslås per kommune og trekkes mot "
                    "regionen. Nettoflytting (% av folketallet) avhenger av innvandringen til "
                    "Norge det året, vektet arbeidsplassvekst der innbyggerne jobber (i år og to "
                    "år tilbake), sentralitet, unge som går inn i arbeidslivet (DS) og kommunens "
                    "attraktivitet. Koeffisientene kan variere mellom år, men trekkes mot en "
                    "felles verdi. Framskrivingen kjører en kohort-komponent-modell for hver "
                    "simulerte framtid, med parametere trukket fra posteriorfordelingen og nye "
                    "årlige sjokk, så båndene bærer begge slags usikkerhet.",
                )
            ),
        ],
    }
