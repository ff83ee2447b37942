"""Report blocks on housing completions as a driver and on a housing plan's effect.

Shown when the fit has ``housing_<lag>`` covariates (``models/housing.toml``): the fitted
coefficients beside the OLS estimate of the same equation, in net migrants per completed
dwelling, with the identification caveat; and, when a plan effect is given
(:func:`vekst.projection.housing_uplift.uplift_plan_effect`, as ``vekst demo`` computes
it), a table per municipality and a line per municipality in the explorer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from vekst.features.housing import housing_lag
from vekst.report.html_helpers import note, table_block
from vekst.report.i18n import Lang, fmt_int, fmt_number, tr

__all__ = [
    "PER_DWELLING",
    "coefficient_frame",
    "explorer_housing",
    "housing_covariates",
    "housing_section",
    "plan_table",
]

#: Net migrants per completed dwelling for a coefficient of 1: the outcome is in % of the
#: population and the covariate in dwellings per 1,000, so b % x 1,000 / 100 = 10 x b.
PER_DWELLING = 10.0
_BAND = 0.9


def housing_covariates(idata: Any) -> list[str]:
    """The fit's ``housing_<lag>`` covariates, by lag (empty when the fit has none)."""
    posterior = getattr(idata, "posterior", None)
    if posterior is None or "covariate" not in posterior.coords:
        return []
    names = [str(c) for c in posterior["covariate"].values]
    return sorted((n for n in names if housing_lag(n) is not None), key=housing_lag)


def _term(name: str, lang: Lang) -> str:
    lag = housing_lag(name)
    if lag == 0:
        return tr(lang, "Completions same year", "Boliger samme år")
    if lag == 1:
        return tr(lang, "Completions year before", "Boliger året før")
    return tr(lang, f"Completions {lag} years before", f"Boliger {lag} år før")


def coefficient_frame(idata: Any, ols: Any) -> pd.DataFrame:
    """Posterior mean and 90 % interval of each housing coefficient beside OLS.

    Parameters
    ----------
    idata
        The fit (``posterior["beta_mu"]`` with a ``covariate`` coordinate).
    ols
        :class:`vekst.models.ols.OLSResult` of the same equation, or ``None``.

    Returns
    -------
    pandas.DataFrame
        Index the covariate names; columns ``mean``, ``low``, ``high`` (5 % and 95 %
        quantiles of the pooled coefficient ``beta_mu``), ``ols``, ``ols_se`` (NaN
        without OLS or where OLS lacks the term), in % of the population per completed
        dwelling per 1,000 inhabitants. Multiply by :data:`PER_DWELLING` for net migrants
        per dwelling.
    """
    rows = {}
    beta = idata.posterior["beta_mu"]
    for name in housing_covariates(idata):
        values = np.asarray(beta.sel(covariate=name).values, dtype=float).ravel()
        low, high = np.quantile(values, [(1 - _BAND) / 2, (1 + _BAND) / 2])
        ols_beta = ols_se = np.nan
        if ols is not None and name in set(ols.beta["covariate"].values.astype(str)):
            ols_beta = float(ols.beta.sel(covariate=name))
            ols_se = float(ols.beta_se.sel(covariate=name))
        rows[name] = {
            "mean": float(values.mean()), "low": float(low), "high": float(high),
            "ols": ols_beta, "ols_se": ols_se,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def _estimate(value: float, low: float, high: float, lang: Lang, digits: int) -> str:
    return (
        f"{fmt_number(value, lang, digits)} [{fmt_number(low, lang, digits)}, "
        f"{fmt_number(high, lang, digits)}]"
    )


def _coefficient_table(frame: pd.DataFrame, lang: Lang) -> pd.DataFrame:
    """Rows: the estimates; columns: the terms (narrow enough for a phone)."""
    per = PER_DWELLING
    columns = {}
    for name, row in frame.iterrows():
        ols = np.isfinite(row["ols"])
        columns[_term(str(name), lang)] = [
            _estimate(row["mean"], row["low"], row["high"], lang, 3),
            _estimate(per * row["mean"], per * row["low"], per * row["high"], lang, 2),
            f"{fmt_number(row['ols'], lang, 3)} ± {fmt_number(row['ols_se'], lang, 3)}"
            if ols else "–",
            f"{fmt_number(per * row['ols'], lang, 2)} ± {fmt_number(per * row['ols_se'], lang, 2)}"
            if ols else "–",
        ]
    index = pd.Index(
        [
            tr(lang, "Bayesian: mean [90 % interval]", "Bayesiansk: snitt [90 %-intervall]"),
            tr(lang, "… in net migrants per dwelling", "… i nettoinnflyttere per bolig"),
            tr(lang, "OLS ± standard error", "OLS ± standardfeil"),
            tr(lang, "… in net migrants per dwelling", "… i nettoinnflyttere per bolig"),
        ],
        name=tr(lang, "Estimate", "Anslag"),
    )
    return pd.DataFrame(columns, index=index)


def plan_table(effect: xr.Dataset, years: tuple[int, ...] = (2030, 2040)) -> pd.DataFrame:
    """The plan's effect per planning municipality: the numbers of the report's table.

    Parameters
    ----------
    effect
        Output of :func:`vekst.projection.housing_uplift.uplift_plan_effect`.
    years
        Years (1 January) of the population effect; those past the projection are left out.

    Returns
    -------
    pandas.DataFrame
        Index the municipality codes with a plan; columns ``extra_completions`` (per plan
        year), ``migration_median``/``_low``/``_high`` (net migration in the first plan
        year, persons) and ``population_<year>_median``/``_low``/``_high`` (persons), the
        median and the central band (``effect.attrs["band"]``) over draws.
    """
    band = float(effect.attrs.get("band", _BAND))
    quantiles = [0.5, (1 - band) / 2, (1 + band) / 2]
    stats = ("median", "low", "high")
    planned = effect["extra_completions"].notnull()
    codes = effect["municipality"].values.astype(str)[planned.values]
    first = int(effect.attrs["plan_first_year"])
    out = pd.DataFrame(index=pd.Index(codes, name="municipality"))
    out["extra_completions"] = effect["extra_completions"].sel(municipality=codes).values
    migration = effect["net_migration_effect"].sel(year=first, municipality=codes)
    values = migration.quantile(quantiles, dim="draw").transpose("quantile", "municipality")
    for stat, row in zip(stats, values.values, strict=True):
        out[f"migration_{stat}"] = row
    stock_years = set(effect["population_effect"]["year"].values.astype(int))
    for year in (y for y in years if y in stock_years):
        population = effect["population_effect"].sel(year=year, municipality=codes)
        values = population.quantile(quantiles, dim="draw").transpose("quantile", "municipality")
        for stat, row in zip(stats, values.values, strict=True):
            out[f"population_{year}_{stat}"] = row
    return out


def _plan_display(
    table: pd.DataFrame, names: dict[str, str], first: int, lang: Lang
) -> pd.DataFrame:
    def whole(value: float) -> str:
        # Round first, so that -0.3 shows as 0, not as a negative zero.
        return fmt_int(np.round(value) + 0.0, lang)

    def cell(prefix: str, code: str) -> str:
        return (
            f"{whole(table.at[code, prefix + '_median'])} "
            f"({whole(table.at[code, prefix + '_low'])} – "
            f"{whole(table.at[code, prefix + '_high'])})"
        )

    years = [c.split("_")[1] for c in table.columns if c.endswith("_median")
             and c.startswith("population_")]
    rows = []
    for code in table.index:
        row = {
            tr(lang, "Municipality", "Kommune"): f"{names.get(code, code)} ({code})",
            tr(lang, "Extra dwellings a year", "Ekstra boliger per år"): fmt_int(
                table.at[code, "extra_completions"], lang),
            tr(lang, f"Net migration {first}", f"Nettoflytting {first}"): cell(
                "migration", code),
        }
        for year in years:
            row[tr(lang, f"Population {year}", f"Folketall {year}")] = cell(
                f"population_{year}", code)
        rows.append(row)
    return pd.DataFrame(rows).set_index(tr(lang, "Municipality", "Kommune"))


def _plan_blocks(effect: xr.Dataset, names: dict[str, str], lang: Lang) -> list[dict[str, Any]]:
    table = plan_table(effect)
    first, last = int(effect.attrs["plan_first_year"]), int(effect.attrs["plan_last_year"])
    share = 100 * float(effect.attrs.get("plan_share", 0.5))
    draws = int(effect.sizes["draw"])
    band = 100 * float(effect.attrs.get("band", _BAND))
    caption = tr(
        lang,
        f"The plan: each municipality with completions data completes {share:.0f} % more "
        f"dwellings than its mean of the last 5 observed years, in every year {first}–{last}. "
        f"Effect = projection with the plan minus the same projection without it, both with "
        f"the same {draws} posterior draws and random numbers (common random numbers), so "
        f"the difference is the plan's alone. Persons: the median, with the {band:.0f} % band "
        f"in brackets; net migration in {first}, population on 1 January.",
        f"Planen: hver kommune med tall for ferdigstilte boliger bygger {share:.0f} % flere "
        f"boliger enn snittet for de siste 5 observerte årene, hvert år {first}–{last}. "
        f"Effekt = framskriving med planen minus den samme framskrivingen uten, begge med de "
        f"samme {draws} trekkene og tilfeldige tallene (felles tilfeldige tall), så "
        f"forskjellen skyldes bare planen. Personer: medianen, med {band:.0f} %-båndet i "
        f"parentes; nettoflytting i {first}, folketall 1. januar.",
    )
    blocks = [table_block(_plan_display(table, names, first, lang), caption)]
    if effect.attrs.get("csv_file"):
        blocks.append(
            note(
                tr(
                    lang,
                    f"The effect in every year, with its band, is in {effect.attrs['csv_file']} "
                    "beside this page.",
                    f"Effekten for hvert år, med bånd, står i {effect.attrs['csv_file']} ved "
                    "siden av denne siden.",
                )
            )
        )
    return blocks


def housing_section(
    idata: Any,
    ols: Any,
    effect: xr.Dataset | None,
    names: dict[str, str],
    lang: Lang,
) -> dict[str, Any] | None:
    """The section "Housing plans", or ``None`` when the fit has no housing covariate.

    Parameters
    ----------
    idata
        The fit.
    ols
        OLS of the same equation (:func:`vekst.models.ols.fit_ols`), or ``None``.
    effect
        A plan's effect (:func:`vekst.projection.housing_uplift.uplift_plan_effect`), or
        ``None`` to show the coefficients only.
    names
        Municipality names by code.
    lang
        Language.
    """
    if not housing_covariates(idata):
        return None
    frame = coefficient_frame(idata, ols)
    n_obs = getattr(ols, "n_obs", None)
    if n_obs is None:
        ols_text = tr(lang, "OLS was not available for this fit.",
                      "OLS var ikke tilgjengelig for denne tilpasningen.")
    else:
        ols_text = tr(
            lang,
            f"OLS fits the same equation (year fixed effects in place of the national term) "
            f"on complete cases only: the {fmt_int(n_obs, lang)} municipality-years where every "
            "driver, housing included, is observed. The Bayesian model uses every year with "
            "completions data, because it switches a missing term off instead of dropping "
            "the row.",
            f"OLS tilpasser den samme ligningen (årsfaste effekter i stedet for det nasjonale "
            f"leddet) på komplette observasjoner: de {fmt_int(n_obs, lang)} kommune-årene der "
            "alle drivkreftene, boliger medregnet, er observert. Den bayesianske modellen "
            "bruker alle år med boligtall, fordi den slår av et manglende ledd i stedet for å "
            "droppe raden.",
        )
    caption = tr(
        lang,
        "The housing coefficients: % of the population per completed dwelling per 1,000 "
        "inhabitants; times 10 this is net migrants per completed dwelling, whatever the "
        "population. Where completions are unknown the term is switched off. ",
        "Boligkoeffisientene: % av folketallet per ferdigstilt bolig per 1 000 innbyggere; "
        "ganget med 10 er det nettoinnflyttere per ferdigstilt bolig, uansett folketall. "
        "Der ferdigstilte boliger ikke er kjent, er leddet slått av. ",
    ) + ols_text
    blocks: list[dict[str, Any]] = [table_block(_coefficient_table(frame, lang), caption)]
    if effect is not None and "extra_completions" in effect:
        blocks.extend(_plan_blocks(effect, names, lang))
    else:
        blocks.append(
            note(
                tr(
                    lang,
                    "`vekst demo` adds the effect of a housing plan here; a scenario's "
                    "housing_plan gives your own (see docs/results/housing.md).",
                    "`vekst demo` legger til effekten av en boligplan her; en egen plan gis "
                    "som housing_plan i et scenario (se docs/results/housing.md).",
                )
            )
        )
    intro = tr(
        lang,
        "Does building more bring more people? Builders complete dwellings where they expect "
        "buyers, so completions follow expected demand as much as they create it. The model's "
        "housing coefficient is therefore an association of net migration with completions, "
        "given the other drivers (jobs, centrality, young people entering work, the place's "
        "attractiveness and the year): how migration has moved with building in the past. "
        "It is not the causal effect of building one more dwelling.",
        "Gir mer bygging flere innbyggere? Utbyggere ferdigstiller boliger der de venter "
        "kjøpere, så boligbyggingen følger forventet etterspørsel like mye som den skaper "
        "den. Modellens boligkoeffisient er derfor en sammenheng mellom nettoflytting og "
        "ferdigstilte boliger, gitt de andre drivkreftene (jobber, sentralitet, unge som går "
        "inn i arbeidslivet, stedets attraktivitet og året): hvordan flyttingen har fulgt "
        "byggingen før. Den er ikke den kausale effekten av å bygge én bolig til.",
    )
    if effect is not None and "extra_completions" in effect:
        intro += tr(
            lang,
            " The plan's effect below is what that past co-movement implies.",
            " Planens effekt under er det denne samvariasjonen tilsier.",
        )
    return {
        "id": "housing",
        "title": tr(lang, "Housing plans", "Boligplaner"),
        "intro": intro,
        "blocks": blocks,
    }


def explorer_housing(effect: xr.Dataset, units: list[dict[str, str]]) -> dict[str, Any]:
    """The plan's effect on each planning municipality's population, for the explorer.

    Returns
    -------
    dict
        ``housing_years`` (1 January years) and ``housing`` ``{unit id: {"extra",
        "band": [low, median, high] lists by year}}`` for municipalities with a plan only,
        so the explorer shows nothing for the others.
    """
    band = float(effect.attrs.get("band", _BAND))
    planned = effect["extra_completions"].notnull().values
    codes = set(effect["municipality"].values.astype(str)[planned])
    population = effect["population_effect"]
    quantiles = population.quantile([(1 - band) / 2, 0.5, (1 + band) / 2], dim="draw")
    housing = {}
    for unit in units:
        if unit["kind"] != "municipality" or unit["code"] not in codes:
            continue
        values = quantiles.sel(municipality=unit["code"]).transpose("quantile", "year").values
        housing[unit["id"]] = {
            "extra": round(float(effect["extra_completions"].sel(municipality=unit["code"]))),
            "band": np.round(values, 1).tolist(),
        }
    return {
        "housing_years": [int(y) for y in population["year"].values],
        "housing_plan": [int(effect.attrs["plan_first_year"]),
                         int(effect.attrs["plan_last_year"])],
        "housing_draws": int(effect.sizes["draw"]),
        "housing_share": round(100 * float(effect.attrs.get("plan_share", 0.5))),
        "housing": housing,
    }
