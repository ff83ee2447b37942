"""Inputs of the projection's migration model, read from a fit's draws and the history.

The fitted equation (:mod:`vekst.models.migration`, :mod:`vekst.models.dynamics`) needs
covariates for the projected years (VRA from scenario job growth through the last
commuting shares, centrality, DS weights, housing completions per 1,000 from the
scenario's housing plan) and, for ``time_structure = "ar1"`` fits, the
state of every process in the last fitted year. Nothing at or after the base year is read
from the panel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import xarray as xr

from vekst.data.commuting_flows import commuting_years
from vekst.data.panel import SEXES
from vekst.errors import InputError
from vekst.io import settings_from
from vekst.projection.migration import (
    CovariateInputs,
    MigrationPosterior,
    MigrationSettings,
    ModelMigration,
    ds_linear_weights,
)

if TYPE_CHECKING:
    from vekst.projection.scenario import Scenario

__all__ = ["MigrationContext", "ProjectionInputError", "migration_model"]


class ProjectionInputError(InputError):
    """Inputs of a projection do not fit together; the message says what to change."""


def _covariates(draws: xr.Dataset) -> list[str]:
    if "covariate" in draws["beta_mu"].dims:
        return [str(c) for c in draws["covariate"].values]
    listed = draws.attrs.get("covariates", [])
    return [str(c) for c in (json.loads(listed) if isinstance(listed, str) else listed)]


def _center(draws: xr.Dataset, key: str) -> float | None:
    """A fit's centre, or None when absent (0.0 is what a fit without one reports)."""
    value = draws.attrs.get(key)
    if value is None:
        return None
    value = float(value)
    return value if value != 0.0 else None


@dataclass(frozen=True, eq=False)
class MigrationContext:
    """What a projection fixes around its migration model.

    Attributes
    ----------
    scenario
        The projection's :class:`~vekst.projection.scenario.Scenario` (job growth,
        housing plan, national net migration).
    base_year
        Year of the starting stock; nothing at or after it is read from the history.
    calendar
        The projected calendar years.
    death_rate
        National death probabilities ``(year, sex, age)`` of the projected years (DS).
    employment_rate
        National employment rates ``(age, sex)`` for DS; default estimated from the
        history.
    seed
        Seed of the random generators.
    record
        Keep the migration-rate components.
    """

    scenario: Scenario
    base_year: int
    calendar: np.ndarray
    death_rate: np.ndarray
    employment_rate: xr.DataArray | None = None
    seed: int = 0
    record: bool = True


def migration_model(
    history: xr.Dataset,
    draws: xr.Dataset,
    context: MigrationContext | None = None,
    **fields: Any,
) -> tuple[ModelMigration, dict]:
    """The fitted migration model for the projected years, and a note of its inputs.

    Parameters
    ----------
    history
        The panel up to the base year.
    draws
        The selected posterior draws (projection contract).
    context
        Scenario, years, vital rates and seed (:class:`MigrationContext`).
    **fields
        Fields of :class:`MigrationContext` by name, replacing the context's (or building
        it when ``context`` is ``None``); an unknown name is a ``TypeError`` naming it.

    Returns
    -------
    (ModelMigration, dict)
    """
    from vekst.features import centrality as centrality_feature

    context = settings_from(MigrationContext, context, fields, "migration_model()")

    covariates = _covariates(draws)
    note: dict = {"covariates": covariates}
    n_mun = history.sizes["municipality"]
    lags = sorted({int(c.rsplit("_", 1)[1]) for c in covariates if c.startswith("vra_")})
    vra_own: dict[int, np.ndarray] = {}
    vra_neighbours: dict[int, np.ndarray] = {}
    if lags:
        vra_own, vra_neighbours, vra_note = _vra_inputs(
            history, context.scenario, context.base_year, context.calendar, lags
        )
        note.update(vra_note)
    centrality = np.zeros(n_mun)
    if "centrality" in covariates:
        center = _center(draws, "centrality_center")
        feature = centrality_feature(history, center="mean" if center is None else center)
        centrality = feature.values.astype(np.float64)
        note["centrality_center"] = float(feature.attrs["center"])
    ds_weights = None
    ds_center = _center(draws, "ds_center")
    if "ds" in covariates:
        ds_weights, profile_note = _ds_weights(
            history, context.death_rate, context.employment_rate
        )
        note["employment_profile"] = profile_note
        note["ds_centering"] = (
            f"constant {ds_center} from the fit"
            if ds_center is not None
            else "mean over municipalities of each projected year and draw (as at fit time)"
        )

    housing = None
    housing_lags = sorted(
        int(c.rsplit("_", 1)[1]) for c in covariates if c.startswith("housing_")
    )
    if housing_lags:
        from vekst.projection.housing_plan import housing_inputs

        housing, note["housing"] = housing_inputs(
            history,
            context.scenario,
            context.base_year,
            context.calendar,
            housing_lags,
            float(draws.attrs.get("housing_center", 0.0)),
        )

    def values(name: str) -> np.ndarray:
        return draws[name].transpose("draw", ...).values.astype(np.float64)

    beta_mu = values("beta_mu").reshape(draws.sizes["draw"], -1)
    beta_sigma = values("beta_sigma").reshape(draws.sizes["draw"], -1)
    posterior = MigrationPosterior(
        covariates=covariates,
        beta_mu=beta_mu,
        beta_sigma=beta_sigma,
        year_effect_mu=values("year_effect_mu"),
        year_effect_sigma=values("year_effect_sigma"),
        attractiveness=draws["attractiveness"].transpose("draw", "municipality").values,
        sigma_base=values("sigma_base"),
        sigma_pop=values("sigma_pop"),
        dynamics=_state_dynamics(
            draws, covariates, context.scenario, context.base_year, context.calendar, note
        ),
        noise_family=str(draws.attrs.get("likelihood", "normal")),
        noise_nu=float(draws.attrs.get("student_t_nu", 5.0)),
    )
    inputs = CovariateInputs(
        vra_own=vra_own,
        vra_neighbours=vra_neighbours,
        centrality=centrality,
        ds_weights=ds_weights,
        ds_center=ds_center,
        housing=housing,
    )
    settings = MigrationSettings(
        n_years=len(context.calendar), seed=context.seed, record=context.record
    )
    model = ModelMigration(posterior, inputs, settings)
    note["noise_family"] = model.noise_family
    return model, note


def _state_dynamics(draws, covariates, scenario, base_year, calendar, note):
    """The fit's VAR(1) states, loadings and persistent deviations, or ``None`` for a fit
    with year effects and coefficients drawn afresh every year (``time_structure="iid"``)."""
    from vekst.models.dynamics import NATIONAL, YEAR_EFFECT
    from vekst.projection.migration import StateDynamics

    if "attract_drift" in draws:
        raise ProjectionInputError(
            "the fit has attractiveness drift (attractiveness_drift = true), which the "
            "projection cannot continue honestly; refit without it."
        )
    if "rho" not in draws:
        return None
    n = draws.sizes["draw"]
    names = [str(s) for s in draws["state"].values]
    mean = np.zeros((n, len(names)))
    sd = np.zeros((n, len(names)))
    last = np.zeros((n, len(names)))
    for j, name in enumerate(names):
        if name == NATIONAL:
            mean[:, j] = draws["national_mu"].values
            sd[:, j] = draws["national_sigma"].values
            last[:, j] = float(draws.attrs["last_national_rate"])
        elif name == YEAR_EFFECT:
            mean[:, j] = draws["year_effect_mu"].values
            sd[:, j] = draws["year_effect_sigma"].values
            last[:, j] = draws["year_effect"].isel(year=-1).values
        else:
            mean[:, j] = draws["beta_mu"].sel(covariate=name).values
            sd[:, j] = draws["beta_sigma"].sel(covariate=name).values
            last[:, j] = (
                draws["beta_year"].sel(covariate=name).transpose("draw", "year").values[:, -1]
            )
    if "state_corr" in draws:
        block_names = [str(s) for s in draws["block_state"].values]
        block = [names.index(b) for b in block_names]
        corr = draws["state_corr"].transpose("draw", ...).values.astype(np.float64)
    else:
        block = [names.index(YEAR_EFFECT)]
        corr = np.ones((n, 1, 1))
    last_fit_year = int(draws.attrs.get("last_fit_year", base_year - 1))
    gap = base_year - 1 - last_fit_year
    if gap < 0:
        raise ProjectionInputError(
            f"the fit uses migration up to {last_fit_year}, after the base year {base_year}; "
            "project from a base year after the fitted years."
        )

    def municipal(name):
        if name not in draws:
            return None
        return draws[name].transpose("draw", "municipality").values.astype(np.float64)

    national_persons = _national_path(scenario, calendar) if NATIONAL in names else None
    note["time_structure"] = {
        "states": names,
        "years_simulated_before_base": gap,
        "national_net_migration": "scenario" if national_persons is not None else "stochastic",
    }
    return StateDynamics(
        names=names,
        mean=mean,
        sd=sd,
        rho=draws["rho"].transpose("draw", "state").values.astype(np.float64),
        block=block,
        corr=corr,
        last=last,
        family=str(draws.attrs.get("innovations", "normal")),
        nu=float(draws.attrs.get("innovations_nu", 4.0)),
        loading=municipal("loading"),
        persistence=municipal("persistence"),
        last_deviation=np.nan_to_num(municipal("last_deviation"))
        if "last_deviation" in draws
        else None,
        gap=gap,
        national_persons=national_persons,
        **_regional_shocks(draws),
        walk_sd=municipal("attract_walk_sd"),
        walk_last=municipal("attract_walk_last"),
    )


def _regional_shocks(draws) -> dict[str, np.ndarray]:
    """The fit's county shocks (``regional_shocks = "county"``) for :class:`StateDynamics`."""
    if "regional_shock" not in draws:
        return {}
    groups = draws.attrs.get("regional_groups")
    if groups is None:
        raise ProjectionInputError(
            "the fit has regional shocks but its draws do not say which county each "
            "municipality is in (attribute 'regional_groups'); read the draws with "
            "vekst.fit.projection_draws or refit."
        )
    groups = json.loads(groups) if isinstance(groups, str) else groups
    shocks = draws["regional_shock"].transpose("draw", "county", "year").values
    return {
        "regional_group": np.asarray(groups, dtype=np.int64),
        "regional_persistence": draws["regional_persistence"].values.astype(np.float64),
        "regional_sigma": draws["regional_sigma"].values.astype(np.float64),
        "regional_last": shocks[:, :, -1].astype(np.float64),
    }


def _national_path(scenario, calendar) -> np.ndarray | None:
    """National net migration (persons) per projected year from the scenario, if set."""
    return scenario.national_net_migration_path(calendar)


def _vra_inputs(history, scenario, base_year, calendar, lags):
    """Own and neighbours' VRA per projected year and lag, ``{lag: (year, municipality)}``."""
    from vekst.features import relative_job_growth

    municipalities = history["municipality"].values.astype(str)
    n_mun = len(municipalities)
    first = int(calendar[0]) - max(lags)
    ra_years = np.arange(first, int(calendar[-1]) + 1)
    ra = np.zeros((len(ra_years), n_mun))
    note: dict = {}
    past = ra_years < base_year
    if past.any() and "employed_workplace" in history:
        observed = relative_job_growth(history).transpose("municipality", "year")
        with_data = [y for y in ra_years[past] if y in observed["year"].values]
        for year in with_data:
            ra[ra_years == year] = np.nan_to_num(observed.sel(year=year).values)
        note["observed_job_growth_years"] = [int(y) for y in with_data]
    future = ~past
    ra[future] = scenario.job_growth_array(history, ra_years[future])
    shares = sp.identity(n_mun, format="csr")
    if "commuting" in history:
        available = [y for y in commuting_years(history) if y < base_year]
        if available:
            year = max(available)
            shares, incomplete = _projection_shares(history, year, municipalities)
            note["commuting_year"] = int(year)
            if incomplete.any():
                note["commuting_rows_own_only"] = municipalities[incomplete].tolist()
    if "commuting_year" not in note:
        note["commuting_year"] = None
        note["commuting"] = "no commuting matrix before the base year: VRA = own RA"
    # Sparse products: (year x unit) job growth through a unit x unit matrix with a few
    # destinations per home.
    total = (shares @ ra.T).T
    own = ra * shares.diagonal()[None, :]
    neighbours = total - own
    vra_own, vra_neighbours = {}, {}
    for lag in lags:
        index = calendar - lag - first
        vra_own[lag] = own[index]
        vra_neighbours[lag] = neighbours[index]
    return vra_own, vra_neighbours, note


def _projection_shares(
    history: xr.Dataset, year: int, municipalities: np.ndarray
) -> tuple[sp.csr_array, np.ndarray]:
    """Commuting shares over the panel's units; rows with unknown shares work at home.

    Returns the (home, work) share matrix and which rows were replaced by the own unit.
    Flows to units outside the panel are dropped; a panel unit missing from the work
    axis leaves every row unknown.
    """
    from vekst.features import share_matrix

    n_mun = len(municipalities)
    matrix = share_matrix(history, year, on_incomplete="nan")
    position = {c: i for i, c in enumerate(municipalities)}
    work_codes = [str(c) for c in matrix.work_codes]
    column = np.array([position.get(c, -1) for c in work_codes], dtype=np.int64)
    incomplete = np.asarray(matrix.nan_rows, dtype=bool).copy()
    if not set(municipalities) <= set(work_codes):
        incomplete[:] = True
    coo = matrix.shares.tocoo()
    inside = (column[coo.col] >= 0) & ~incomplete[coo.row]
    rows = np.concatenate([coo.row[inside], np.flatnonzero(incomplete)])
    cols = np.concatenate([column[coo.col[inside]], np.flatnonzero(incomplete)])
    values = np.concatenate([coo.data[inside], np.ones(int(incomplete.sum()))])
    shares = sp.csr_array((values, (rows, cols)), shape=(n_mun, n_mun))
    return shares, incomplete


def _ds_weights(history, death_rate, employment_rate):
    from vekst.features import estimate_employment_profile

    if employment_rate is None:
        employment_rate = estimate_employment_profile(history)
        profile_note = "estimated from the panel (estimate_employment_profile)"
    else:
        profile_note = "supplied"
    ages = history["age"].values
    rate = employment_rate.reindex(age=ages, sex=list(SEXES)).transpose("age", "sex")
    rate = np.nan_to_num(rate.values.astype(np.float64))
    death_probability = 1.0 - np.exp(-death_rate)  # (year, sex, age)
    weights = np.stack(
        [
            ds_linear_weights(rate, death_probability[t].T, len(ages))
            for t in range(death_rate.shape[0])
        ]
    )
    return weights, profile_note


# --- outputs -------------------------------------------------------------------------------
