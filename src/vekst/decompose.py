"""Growth decomposition: why a municipality grew or shrank, in persons per year.

Yearly growth of municipality *m* in year *t* (1 January *t* to 1 January *t + 1*) is split
into contributions that add up to it exactly, draw by draw:

=======================  ===========================================================
component                contribution (persons; deaths count negative)
=======================  ===========================================================
expected_births          women-years x national ASFR
fertility_deviation      births - expected births
expected_deaths          - persons x national death rates
mortality_deviation      - (deaths - expected deaths)
national_immigration     year effect (national net immigration, common shocks)
centrality               beta_centrality x centrality
own_jobs                 sum over VRA lags of beta x own-municipality part of VRA
neighbours_jobs          sum over VRA lags of beta x neighbours' part of VRA
ds                       beta_ds x demographic supply
housing                  sum over lags of beta x completed dwellings per 1,000
                         (an association, see :mod:`vekst.features.housing`)
attractiveness           the municipality's attractiveness
residual                 net migration not explained by the model (noise; in a
                         projection also migration the cap could not apply)
=======================  ===========================================================

Migration terms are rates (% of the 1 January population) times that population / 100.
Every term has a value per posterior draw, so intervals come for free; quantiles are
taken after any averaging over years or summing over places
(:func:`decomposition_summary`).

History (:func:`decompose_history`) uses observed births and deaths where the panel has
them (else the model's expected x exp(deviation) per draw), and the net migration implied
by the accounts (growth - births + deaths). Year-specific coefficients ``beta_year``
(draw, covariate, year) and year effects ``year_effect`` (draw, year) are used where the
draws carry them for that year, the pooled means otherwise. Projections
(:func:`decompose_projection`) use the flows and migration components the projection
recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from vekst.errors import InputError

__all__ = [
    "COMPONENTS",
    "DecompositionError",
    "decompose_history",
    "decompose_projection",
    "decomposition_summary",
]

COMPONENTS: tuple[str, ...] = (
    "expected_births",
    "fertility_deviation",
    "expected_deaths",
    "mortality_deviation",
    "national_immigration",
    "centrality",
    "own_jobs",
    "neighbours_jobs",
    "ds",
    "housing",
    "attractiveness",
    "residual",
)
_MIGRATION_PARTS = (
    "national_immigration",
    "centrality",
    "own_jobs",
    "neighbours_jobs",
    "ds",
    "housing",
    "attractiveness",
)


class DecompositionError(InputError):
    """Inputs cannot be decomposed; the message says what is missing."""


def _municipality_coords(source: xr.Dataset) -> dict:
    coords = {}
    for name in ("name", "county", "region", "region_name"):
        if name in source.coords and source[name].dims == ("municipality",):
            coords[name] = ("municipality", source[name].values.astype(str))
    return coords


def _result(
    contributions: np.ndarray,
    growth: np.ndarray,
    municipalities: np.ndarray,
    years: np.ndarray,
    source: xr.Dataset,
    attrs: dict,
) -> xr.Dataset:
    coords = {
        "draw": np.arange(contributions.shape[0]),
        "component": list(COMPONENTS),
        "municipality": municipalities,
        "year": years,
        **_municipality_coords(source),
    }
    return xr.Dataset(
        {
            "contribution": (
                ("draw", "component", "municipality", "year"),
                contributions,
                {"units": "persons", "long_name": "contribution to growth during the year"},
            ),
            "growth": (
                ("draw", "municipality", "year"),
                growth,
                {"units": "persons", "long_name": "population change 1 Jan t to 1 Jan t+1"},
            ),
        },
        coords=coords,
        attrs=attrs,
    )


# --- projection ----------------------------------------------------------------------------
def decompose_projection(projection: xr.Dataset) -> xr.Dataset:
    """Decompose the projected growth of every draw, municipality and year.

    Parameters
    ----------
    projection
        Output of :func:`vekst.projection.project` run with ``record_components=True``.

    Returns
    -------
    xarray.Dataset
        ``contribution`` (draw, component, municipality, year) and ``growth`` (draw,
        municipality, year), persons; ``year`` = calendar years projected.
    """
    needed = ["population_total", "births", "deaths", "expected_births", "expected_deaths",
              "net_migration", "net_migration_requested", "migration_components"]
    missing = [n for n in needed if n not in projection]
    if missing:
        raise DecompositionError(
            f"the projection lacks {missing}; rerun project(..., record_components=True) "
            "with posterior draws (a projection without a migration model has no parts)."
        )
    years = projection["year"].values[:-1]
    flows = projection.sel(year=years)

    def get(name: str) -> np.ndarray:
        return flows[name].transpose("draw", "municipality", "year").values.astype(np.float64)

    population = get("population_total")
    following = projection["population_total"].transpose("draw", "municipality", "year").values
    growth = following[..., 1:] - following[..., :-1]
    births, deaths = get("births"), get("deaths")
    expected_births, expected_deaths = get("expected_births"), get("expected_deaths")
    applied, requested = get("net_migration"), get("net_migration_requested")
    parts = flows["migration_components"].transpose("draw", "component", "municipality", "year")
    part_names = [str(c) for c in parts["component"].values]
    part_values = parts.values.astype(np.float64) / 100.0 * population[:, None]
    out = np.zeros((population.shape[0], len(COMPONENTS), *population.shape[1:]))
    index = {name: i for i, name in enumerate(COMPONENTS)}
    out[:, index["expected_births"]] = expected_births
    out[:, index["fertility_deviation"]] = births - expected_births
    out[:, index["expected_deaths"]] = -expected_deaths
    out[:, index["mortality_deviation"]] = -(deaths - expected_deaths)
    for name in _MIGRATION_PARTS:
        out[:, index[name]] = part_values[:, part_names.index(name)]
    # Noise plus whatever the no-negative-cell cap could not apply.
    out[:, index["residual"]] = part_values[:, part_names.index("noise")] + (applied - requested)
    attrs = {
        "source": "projection",
        "scenario": projection.attrs.get("scenario", ""),
        "base_year": projection.attrs.get("base_year", int(years[0])),
    }
    return _result(out, growth, projection["municipality"].values, years, projection, attrs)


# --- history -------------------------------------------------------------------------------
def decompose_history(
    panel: xr.Dataset,
    draws: xr.Dataset,
    features: xr.Dataset | xr.DataArray | None = None,
    *,
    employment_rate: xr.DataArray | None = None,
    years: Sequence[int] | None = None,
) -> xr.Dataset:
    """Decompose observed growth with a fitted model.

    Parameters
    ----------
    panel
        The panel the model was fitted on.
    draws
        Posterior draws (projection contract; ``beta_year`` and ``year_effect`` used where
        present).
    features
        Covariates the model saw, ``(covariate, municipality, year)`` in model units
        (centred); a DataArray, or a Dataset with ``x`` (and optionally ``x_available``)
        such as a fit's ``fit_data`` group. Default: computed with
        :func:`vekst.features.design_matrix` (missing values switch a term off, as in the
        model).
    employment_rate
        For DS when ``features`` is not given.
    years
        Calendar years to decompose; default every year with a next-year stock, expected
        births and deaths (and, when ``features`` are given, covariates).

    Returns
    -------
    xarray.Dataset
        ``contribution`` (draw, component, municipality, year) and ``growth``.
    """
    from vekst.features import design_matrix, expected_births, expected_deaths

    municipalities = panel["municipality"].values.astype(str)
    covariates = _draw_covariates(draws)
    population = panel["population"].sum(("age", "sex")).transpose("municipality", "year")
    all_years = np.asarray(panel["year"].values)
    eb_all = expected_births(panel)
    ed_all = expected_deaths(panel)
    if years is None:
        candidates = all_years[np.isin(all_years + 1, all_years)]
        if features is not None:
            # Only the years the model saw (a fit's fit_data covers its fitted years).
            candidates = candidates[np.isin(candidates, features["year"].values)]
        ok = eb_all.sel(year=candidates).notnull().all("municipality").values
        ok &= ed_all.sel(year=candidates).notnull().all("municipality").values
        years = candidates[ok]
    years = np.asarray(years, dtype=np.int64)
    if years.size == 0:
        raise DecompositionError(
            "no year has both a next-year stock and national rates; check 'fertility_rate' "
            "and 'mortality_rate'."
        )
    draws = _align(draws, municipalities)
    n_draws = draws.sizes["draw"]
    pop_now = population.sel(year=years).values.astype(np.float64)
    pop_next = population.sel(year=years + 1).values.astype(np.float64)
    growth = np.broadcast_to(pop_next - pop_now, (n_draws, *pop_now.shape)).copy()
    eb = eb_all.sel(year=years).transpose("municipality", "year").values
    ed = ed_all.sel(year=years).transpose("municipality", "year").values

    births = _events(panel, "births", years, eb, draws, "fert_dev")
    deaths = _events(panel, "deaths", years, ed, draws, "mort_dev")
    migration = growth - births + deaths

    x = _history_features(panel, covariates, features, years, employment_rate, design_matrix)
    own = _own_vra(panel, covariates, x, years)
    beta = _beta_by_year(draws, covariates, years)  # (draw, covariate, year)
    year_effect = _year_effect_by_year(draws, years)  # (draw, year)
    attractiveness = draws["attractiveness"].transpose("draw", "municipality").values

    scale = pop_now / 100.0
    out = np.zeros((n_draws, len(COMPONENTS), len(municipalities), len(years)))
    index = {name: i for i, name in enumerate(COMPONENTS)}
    out[:, index["expected_births"]] = eb
    out[:, index["fertility_deviation"]] = births - eb
    out[:, index["expected_deaths"]] = -ed
    out[:, index["mortality_deviation"]] = -(deaths - ed)
    common = np.broadcast_to(year_effect[:, None, :], (n_draws, len(municipalities), len(years)))
    if "loading" in draws:
        # The ar1 equation: settlement loading x national net migration + year effect.
        loading = draws["loading"].transpose("draw", "municipality").values
        common = common + loading[:, :, None] * _national_rate(panel, years)[None, None, :]
    out[:, index["national_immigration"]] = common * scale
    out[:, index["attractiveness"]] = attractiveness[:, :, None] * scale
    for k, name in enumerate(covariates):
        term = beta[:, k, None, :] * x[k][None] * scale
        if name.startswith("vra"):
            own_part = beta[:, k, None, :] * own[k][None] * scale
            out[:, index["own_jobs"]] += own_part
            out[:, index["neighbours_jobs"]] += term - own_part
        elif name in ("centrality", "ds"):
            out[:, index[name]] += term
        elif name.startswith("housing_"):
            out[:, index["housing"]] += term
        else:
            raise DecompositionError(f"cannot place covariate '{name}' in a component.")
    explained = out[:, [index[n] for n in _MIGRATION_PARTS]].sum(1)
    out[:, index["residual"]] = migration - explained
    attrs = {
        "source": "history",
        "births": _event_source(panel, "births", years, "fert_dev"),
        "deaths": _event_source(panel, "deaths", years, "mort_dev"),
        "coefficients": "beta_year/year_effect where present, pooled means otherwise",
    }
    return _result(out, growth, municipalities, years, panel, attrs)


def _draw_covariates(draws: xr.Dataset) -> list[str]:
    if "covariate" in draws.coords:
        return [str(c) for c in draws["covariate"].values]
    return [str(c) for c in draws.attrs.get("covariates", [])]


def _align(draws: xr.Dataset, municipalities: np.ndarray) -> xr.Dataset:
    codes = draws["municipality"].values.astype(str)
    absent = sorted(set(municipalities) - set(codes))
    if absent:
        raise DecompositionError(
            f"the draws have no municipality {absent[:10]}; use draws from a fit on this panel."
        )
    return draws.assign_coords(municipality=codes).sel(municipality=municipalities)


def _observed(panel: xr.Dataset, name: str, years: np.ndarray) -> bool:
    return name in panel and bool(panel[name].sel(year=years).notnull().all())


def _event_source(panel, name, years, deviation) -> str:
    if not _observed(panel, name, years):
        return f"model: expected x exp({deviation})"
    if panel[name].attrs.get("derived") == "yes":
        return "panel (derived, not observed)"
    return "panel (observed)"


def _events(panel, name, years, expected, draws, deviation) -> np.ndarray:
    """Observed events, or expected x exp(deviation) per draw where not observed."""
    n_draws = draws.sizes["draw"]
    if _observed(panel, name, years):
        values = panel[name].sel(year=years).transpose("municipality", "year").values
        return np.broadcast_to(values.astype(np.float64), (n_draws, *expected.shape)).copy()
    if deviation in draws:
        factor = np.exp(draws[deviation].transpose("draw", "municipality").values)
        return expected[None] * factor[:, :, None]
    return np.broadcast_to(expected, (n_draws, *expected.shape)).copy()


def _history_features(panel, covariates, features, years, employment_rate, design_matrix):
    """Covariates ``(covariate, municipality, year)``, 0 where switched off."""
    if not covariates:
        return np.zeros((0, panel.sizes["municipality"], len(years)))
    if features is None:
        x = design_matrix(panel, covariates=covariates, employment_rate=employment_rate)
        available = x.notnull()
    elif isinstance(features, xr.Dataset):
        x = features["x"]
        available = features["x_available"] if "x_available" in features else x.notnull()
    else:
        x = features
        available = x.notnull()
    x = x.assign_coords(covariate=[str(c) for c in x["covariate"].values])
    missing = [c for c in covariates if c not in x["covariate"].values]
    absent_years = [int(y) for y in years if y not in x["year"].values]
    if missing or absent_years:
        raise DecompositionError(
            f"features lack covariate(s) {missing} or year(s) {absent_years[:10]}; pass the "
            "features the model was fitted with (the fit's fit_data group)."
        )
    x = x.where(available, 0.0).fillna(0.0)
    x = x.assign_coords(municipality=x["municipality"].values.astype(str))
    codes = panel["municipality"].values.astype(str)
    x = x.sel(covariate=covariates, year=years, municipality=codes)
    return x.transpose("covariate", "municipality", "year").values.astype(np.float64)


def _own_vra(panel, covariates, x, years) -> np.ndarray:
    """Own-municipality part of each VRA covariate (neighbours = VRA - own)."""
    from vekst.features import FeatureError, vra_split

    own = np.zeros_like(x)
    lags = {
        k: int(name.rsplit("_", 1)[1])
        for k, name in enumerate(covariates)
        if name.startswith("vra")
    }
    if not lags:
        return own
    try:
        split = vra_split(panel, lags=sorted(set(lags.values())), on_incomplete="nan")
    except FeatureError:
        split = None
    for k, lag in lags.items():
        name = covariates[k]
        if "_neighbours_" in name:
            continue
        if "_own_" in name or split is None:
            own[k] = x[k]
            continue
        part = split["own"].sel(lag=lag).transpose("municipality", "year")
        part = part.reindex(year=years).values
        # Where the split is unknown the whole term is counted as own.
        own[k] = np.where(np.isfinite(part) & (x[k] != 0), part, x[k])
    return own


def _beta_by_year(draws, covariates, years) -> np.ndarray:
    pooled = draws["beta_mu"].transpose("draw", "covariate").values.astype(np.float64)
    out = np.repeat(pooled[:, :, None], len(years), axis=2)
    if "beta_year" in draws:
        by_year = draws["beta_year"].transpose("draw", "covariate", "year")
        fitted = by_year["year"].values
        for j, year in enumerate(years):
            if year in fitted:
                out[:, :, j] = by_year.sel(year=year).values
    return out


def _national_rate(panel: xr.Dataset, years: np.ndarray) -> np.ndarray:
    """National net migration in % of the national population for ``years``."""
    persons = panel["net_migration_total"].sel(year=years).sum("municipality")
    population = panel["population"].sum(("municipality", "age", "sex")).sel(year=years)
    return (100.0 * persons / population).values.astype(np.float64)


def _year_effect_by_year(draws, years) -> np.ndarray:
    pooled = draws["year_effect_mu"].values.astype(np.float64)
    out = np.repeat(pooled[:, None], len(years), axis=1)
    if "year_effect" in draws:
        by_year = draws["year_effect"].transpose("draw", "year")
        fitted = by_year["year"].values
        for j, year in enumerate(years):
            if year in fitted:
                out[:, j] = by_year.sel(year=year).values
    return out


# --- summary -------------------------------------------------------------------------------
def decomposition_summary(
    decomposition: xr.Dataset,
    *,
    by: str = "municipality",
    years: Sequence[int] | None = None,
    average: bool = True,
) -> pd.DataFrame:
    """Mean and 80 % interval (q10, q90) of every component over draws.

    Parameters
    ----------
    decomposition
        Output of :func:`decompose_history` or :func:`decompose_projection`.
    by
        ``"municipality"``, ``"region"``, ``"county"`` or ``"nation"``; places are summed
        per draw before quantiles.
    years
        Years to include (default all).
    average
        Average over the years per draw (the "average yearly change" chart); otherwise one
        row per year.

    Returns
    -------
    pandas.DataFrame
        Columns ``<by>, [year,] component, mean, q10, q90`` with a ``total`` row per place
        (the sum of the components, equal to the growth).
    """
    contribution = decomposition["contribution"]
    growth = decomposition["growth"]
    if years is not None:
        contribution = contribution.sel(year=list(years))
        growth = growth.sel(year=list(years))
    total = growth.expand_dims(component=["total"])
    values = xr.concat([contribution, total.transpose(*contribution.dims)], dim="component")
    values = values.reset_coords(drop=True)
    if by != "municipality":
        if by == "nation":
            keys = np.array(["nation"] * decomposition.sizes["municipality"])
        elif by in decomposition.coords:
            keys = decomposition[by].values.astype(str)
        else:
            raise DecompositionError(f"the decomposition has no '{by}' coordinate.")
        values = values.assign_coords(group=("municipality", keys)).groupby("group").sum()
        values = values.rename({"group": by})
    if average:
        values = values.mean("year")
        index = [by, "component"]
    else:
        index = [by, "year", "component"]
    values = values.transpose("draw", *index)
    data = values.values
    frame = pd.DataFrame(
        {
            d: label.ravel()
            for d, label in zip(
                index, np.meshgrid(*[values[d].values for d in index], indexing="ij"), strict=True
            )
        }
    )
    frame["mean"] = data.mean(0).ravel()
    frame["q10"] = np.quantile(data, 0.10, axis=0).ravel()
    frame["q90"] = np.quantile(data, 0.90, axis=0).ravel()
    return frame
