"""The projection driver: panel + posterior draws + scenario -> labelled projection.

xarray is used here, at the edges only: labels, alignment and the output dataset. The
work happens in :func:`vekst.projection.kernel.run_kernel`.

Nothing at or after the base year is read from the panel except the base-year stock, so a
projection from an earlier base year is an honest back-test: national rates, the
migration schedule, the employment profile, commuting shares and observed job growth all
come from calendar years before the base year.
"""

from __future__ import annotations

import json
import warnings
from typing import Literal

import numpy as np
import xarray as xr

from vekst.agegroups import AGE_GROUPS, age_group_matrix
from vekst.errors import InputError
from vekst.projection.fertility import asfr_path, fertility_history, sex_ratio_at_birth
from vekst.projection.kernel import OUT_CAP, KernelInputs, run_kernel
from vekst.projection.migration import COMPONENTS, ModelMigration, ds_linear_weights
from vekst.projection.mortality import (
    estimate_mortality_trend,
    life_expectancy,
    mortality_history,
    shift_life_expectancy,
)
from vekst.projection.scenario import Scenario
from vekst.projection.schedule import MigrationSchedule, estimate_migration_schedule

__all__ = [
    "AGE_GROUPS",
    "ProjectionInputError",
    "make_test_draws",
    "project",
]

SEXES = ("female", "male")
#: Age groups of the summaries (label, first age, last age; the last is open).
#: ``detail="auto"`` keeps single ages while the population array stays below this size.
AUTO_FULL_LIMIT_BYTES = 2 * 1024**3
_FLOW_DIMS = ("draw", "year", "municipality")
_REQUIRED_DRAWS = (
    "beta_mu",
    "beta_sigma",
    "year_effect_mu",
    "year_effect_sigma",
    "attractiveness",
    "sigma_base",
    "sigma_pop",
)


class ProjectionInputError(InputError):
    """Inputs of a projection do not fit together; the message says what to change."""


def project(
    panel: xr.Dataset,
    draws: xr.Dataset | None,
    *,
    scenario: Scenario | None = None,
    base_year: int | None = None,
    end_year: int = 2040,
    n_draws: int | None = None,
    seed: int = 0,
    chunk_size: int = 10,
    schedule: MigrationSchedule | None = None,
    employment_rate: xr.DataArray | None = None,
    mortality_window: int = 20,
    mortality_method: str = "loglinear",
    detail: Literal["auto", "full", "age_groups", "totals"] = "auto",
    record_components: bool = True,
    out_cap: float = OUT_CAP,
    dtype: type = np.float32,
    trace=None,
) -> xr.Dataset:
    """Posterior-predictive cohort-component projection of every municipality.

    Parameters
    ----------
    panel
        A validated panel (see :mod:`vekst.data.panel`).
    draws
        Posterior draws in the projection contract (see :func:`make_test_draws`, or
        :func:`vekst.fit.projection_draws`); ``None`` projects without migration and
        without vital deviations (a deterministic cohort-component run repeated over
        ``n_draws`` (default 1) identical draws).
    scenario
        Job growth and fertility/mortality alternatives; default the baseline.
    base_year
        Year of the starting stock (1 January); default the panel's last year.
    end_year
        Last 1 January stock projected.
    n_draws
        Draws to project; default all. Fewer are a random subset (by ``seed``), more
        reuse posterior draws with fresh shocks.
    seed
        Seed of the draw subset and of every random shock.
    chunk_size
        Draws per kernel chunk. Small chunks keep the working set in the CPU cache: at
        national size 10 draws per chunk ran ~30 % faster than 100 (``benchmarks/projection.py``).
    schedule
        Migration age schedule; default estimated from the panel
        (:func:`~vekst.projection.schedule.estimate_migration_schedule`).
    employment_rate
        National employment rates ``(age, sex)`` for DS; default estimated from the panel.
    mortality_window, mortality_method
        Trend estimation, see :func:`~vekst.projection.mortality.estimate_mortality_trend`.
    detail
        ``"full"``: ``population`` by single age and sex; ``"age_groups"``:
        ``population_age_group`` only; ``"totals"``: totals only; ``"auto"``: full while
        the array stays below 2 GiB, else age groups.
    record_components
        Keep the migration-rate components (for :func:`vekst.decompose.decompose_projection`).
    out_cap
        Largest share of a cell that may move out in a year.
    dtype
        Cell precision of the kernel.
    trace
        Debug hook passed to :func:`~vekst.projection.kernel.run_kernel` (cell-level
        accounting in tests).

    Returns
    -------
    xarray.Dataset
        ``population`` (draw, year, municipality, age, sex) float32, ``population_total``
        (draw, year, municipality); flows ``births``, ``deaths``, ``net_migration``
        (applied), ``net_migration_requested``, ``expected_births``, ``expected_deaths``
        (draw, year, municipality; NaN in the end year, like the panel's flows);
        ``migration_components`` (draw, year, municipality, component; % of population);
        attrs ``scenario`` (JSON), ``assumptions`` (JSON) and the run settings.
    """
    scenario = scenario or Scenario()
    years = np.asarray(panel["year"].values, dtype=np.int64)
    base_year = int(years[-1]) if base_year is None else int(base_year)
    if base_year not in years:
        raise ProjectionInputError(
            f"base year {base_year} is not a panel year ({years[0]}-{years[-1]}); pass a "
            "year whose 1 January population the panel holds."
        )
    if end_year <= base_year:
        raise ProjectionInputError(f"end_year {end_year} must be after the base year {base_year}.")
    history = _history(panel, base_year)
    municipalities = panel["municipality"].values.astype(str)
    calendar = np.arange(base_year, end_year, dtype=np.int64)
    stock_years = np.arange(base_year, end_year + 1, dtype=np.int64)
    ages = np.asarray(panel["age"].values)
    assumptions: dict = {}

    death_rate, mortality_note = _mortality(
        panel, base_year, end_year, calendar, scenario, mortality_window, mortality_method
    )
    assumptions["mortality"] = mortality_note
    hazard, newborn_hazard = _hazards(death_rate, ages)
    asfr, fertility_note = _fertility(panel, base_year, calendar, scenario, ages)
    assumptions["fertility"] = fertility_note
    srb, srb_source = sex_ratio_at_birth(history, before_year=base_year)
    assumptions["sex_ratio_at_birth"] = {"value": srb, "source": srb_source}

    if schedule is None:
        schedule = estimate_migration_schedule(history, before_year=base_year)
    schedule = schedule.reindex(municipalities)
    assumptions["migration_schedule"] = schedule.source

    selected, n_total = _select_draws(draws, n_draws, seed, municipalities)
    migration = None
    if selected is not None:
        migration, migration_note = _migration_model(
            history,
            selected,
            scenario=scenario,
            base_year=base_year,
            calendar=calendar,
            death_rate=death_rate,
            employment_rate=employment_rate,
            seed=seed,
            record=record_components,
        )
        assumptions["migration_model"] = migration_note

    population0 = (
        panel["population"]
        .sel(year=base_year)
        .transpose("municipality", "sex", "age")
        .sel(sex=list(SEXES))
        .values.astype(np.float64)
    )
    inputs = KernelInputs(
        population=population0,
        hazard=hazard,
        newborn_hazard=newborn_hazard,
        asfr=asfr,
        female_birth_share=1.0 / (1.0 + srb),
        in_share=schedule.in_share,
        out_propensity=schedule.out_propensity,
        mort_factor=_factor(selected, "mort_dev"),
        fert_factor=_factor(selected, "fert_dev"),
        out_cap=out_cap,
    )
    detail = _choose_detail(detail, n_total, len(stock_years), population0.shape)
    storage = _Storage(detail, n_total, len(stock_years), population0.shape, ages)
    result = run_kernel(
        inputs,
        n_total,
        migration,
        chunk_size=chunk_size,
        dtype=dtype,
        store=storage.store if storage.needed else None,
        trace=trace,
    )
    attrs = {
        "title": "vekst posterior-predictive cohort-component projection",
        "scenario": scenario.to_json(),
        "scenario_name": scenario.name,
        "assumptions": json.dumps(assumptions, default=_json_default),
        "base_year": base_year,
        "end_year": int(end_year),
        "seed": int(seed),
        "n_draws": int(n_total),
        "chunk_size": int(chunk_size),
        "detail": detail,
        "out_cap": float(out_cap),
        "vekst_version": _version(),
        "spec_hash": "" if selected is None else str(selected.attrs.get("spec_hash", "")),
        "accounting": "P[t+1] = survivors + newborn survivors + net_migration (applied); "
        "flows labelled with their calendar year, NaN in the end year",
    }
    return _assemble(
        panel, municipalities, stock_years, ages, result, storage, migration, selected, attrs
    )


# --- inputs --------------------------------------------------------------------------------
def _history(panel: xr.Dataset, base_year: int) -> xr.Dataset:
    """The panel up to the base year, with flows of the base year and later removed."""
    from vekst.data.panel import FLOW_VARIABLES

    history = panel.sel(year=panel["year"] <= base_year)
    for name in FLOW_VARIABLES:
        if name in history and "year" in history[name].dims:
            history[name] = history[name].where(history["year"] < base_year)
    return history


def _mortality(panel, base_year, end_year, calendar, scenario, window, method):
    history = mortality_history(panel, before_year=base_year)
    ages = panel["age"].values
    if not np.array_equal(history["age"].values, ages):
        history = history.reindex(age=ages)
        if bool(history.isnull().any()):
            raise ProjectionInputError(
                "national death rates do not cover every panel age "
                f"({ages[0]}-{ages[-1]}); extend the rates to the open age group."
            )
    trend = estimate_mortality_trend(history, window=window, method=method)
    rates = trend.rates(calendar, improvement_multiplier=scenario.mortality_improvement_multiplier)
    note = trend.describe()
    note["improvement_multiplier"] = scenario.mortality_improvement_multiplier
    if scenario.e0_shift:
        ramp = (calendar - base_year + 1) / (end_year - base_year)
        rates = shift_life_expectancy(rates, (scenario.e0_shift * ramp)[:, None])
        note["e0_shift"] = scenario.e0_shift
    e0_start = life_expectancy(trend.jump_off_rate)
    e0_end = life_expectancy(rates[-1])
    note["e0"] = {
        sex: {
            str(trend.jump_off_year): round(float(e0_start[i]), 2),
            str(int(calendar[-1])): round(float(e0_end[i]), 2),
        }
        for i, sex in enumerate(SEXES)
    }
    return rates, note


def _hazards(death_rate: np.ndarray, ages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """National cohort hazards in the accounting convention of vekst.data.components."""
    from vekst.data.components import newborn_survival, survival_probability

    rates = xr.DataArray(
        death_rate,
        dims=("year", "sex", "age"),
        coords={"sex": list(SEXES), "age": ages},
    )
    p = survival_probability(rates).transpose("year", "sex", "age").values
    p0 = newborn_survival(rates).transpose("year", "sex").values
    return -np.log(p), -np.log(p0)


def _fertility(panel, base_year, calendar, scenario, ages):
    history = fertility_history(panel, before_year=base_year)
    if not np.array_equal(history["age"].values, ages):
        history = history.reindex(age=ages, fill_value=0.0)
    asfr = asfr_path(
        history,
        calendar,
        tfr_target=scenario.tfr_target,
        tfr_target_year=scenario.tfr_target_year,
        asfr_multiplier=scenario.asfr_multiplier,
    )
    note = {
        "jump_off_year": int(history["year"].values[-1]),
        "tfr_last_observed": float(history.isel(year=-1).sum()),
        "tfr_path": {
            int(y): round(float(v), 4) for y, v in zip(calendar, asfr.sum(1), strict=True)
        },
        "rule": "hold the last observed ASFR schedule"
        if scenario.tfr_target is None
        else f"scale the last schedule linearly to TFR {scenario.tfr_target}",
        "asfr_multiplier": scenario.asfr_multiplier,
    }
    return asfr, note


def _select_draws(draws, n_draws, seed, municipalities):
    """Pick the draws to project, aligned to the panel's municipalities."""
    if draws is None:
        return None, int(n_draws or 1)
    missing = [name for name in _REQUIRED_DRAWS if name not in draws]
    if missing:
        raise ProjectionInputError(
            f"the draws lack {missing}; build them with vekst.fit.projection_draws(idata) "
            "or make_test_draws(panel, ...)."
        )
    if "draw" not in draws.dims:
        raise ProjectionInputError("the draws need a 'draw' dimension (chains stacked).")
    available = draws.sizes["draw"]
    rng = np.random.default_rng(seed)
    if n_draws is None or n_draws == available:
        index = np.arange(available)
    elif n_draws < available:
        index = np.sort(rng.choice(available, size=n_draws, replace=False))
    else:
        index = np.concatenate(
            [np.arange(available), rng.choice(available, size=n_draws - available)]
        )
    selected = draws.isel(draw=index)
    selected = selected.assign_coords(posterior_draw=("draw", index), draw=np.arange(len(index)))
    if "municipality" in selected.dims:
        codes = selected["municipality"].values.astype(str)
        absent = sorted(set(municipalities) - set(codes))
        if absent:
            raise ProjectionInputError(
                f"the draws have no municipality {absent[:10]} of the panel; fit the model "
                "on the same panel (same municipality codes) that you project."
            )
        selected = selected.assign_coords(municipality=codes).sel(municipality=municipalities)
    return selected, len(index)


def _factor(selected: xr.Dataset | None, name: str) -> np.ndarray | None:
    if selected is None or name not in selected:
        return None
    values = selected[name].transpose("draw", "municipality").values.astype(np.float64)
    return np.exp(np.nan_to_num(values))


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


def _migration_model(
    history, draws, *, scenario, base_year, calendar, death_rate, employment_rate, seed, record
):
    from vekst.features import centrality as centrality_feature

    covariates = _covariates(draws)
    note: dict = {"covariates": covariates}
    n_mun = history.sizes["municipality"]
    lags = sorted({int(c.rsplit("_", 1)[1]) for c in covariates if c.startswith("vra_")})
    vra_own: dict[int, np.ndarray] = {}
    vra_neighbours: dict[int, np.ndarray] = {}
    if lags:
        vra_own, vra_neighbours, vra_note = _vra_inputs(
            history, scenario, base_year, calendar, lags
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
        ds_weights, profile_note = _ds_weights(history, death_rate, employment_rate)
        note["employment_profile"] = profile_note
        note["ds_centering"] = (
            f"constant {ds_center} from the fit"
            if ds_center is not None
            else "mean over municipalities of each projected year and draw (as at fit time)"
        )

    def values(name: str) -> np.ndarray:
        return draws[name].transpose("draw", ...).values.astype(np.float64)

    beta_mu = values("beta_mu").reshape(draws.sizes["draw"], -1)
    beta_sigma = values("beta_sigma").reshape(draws.sizes["draw"], -1)
    model = ModelMigration(
        covariates=covariates,
        beta_mu=beta_mu,
        beta_sigma=beta_sigma,
        year_effect_mu=values("year_effect_mu"),
        year_effect_sigma=values("year_effect_sigma"),
        attractiveness=draws["attractiveness"].transpose("draw", "municipality").values,
        sigma_base=values("sigma_base"),
        sigma_pop=values("sigma_pop"),
        vra_own=vra_own,
        vra_neighbours=vra_neighbours,
        centrality=centrality,
        ds_weights=ds_weights,
        ds_center=ds_center,
        n_years=len(calendar),
        seed=seed,
        record=record,
        dynamics=_state_dynamics(draws, covariates, scenario, base_year, calendar, note),
        noise_family=str(draws.attrs.get("likelihood", "normal")),
        noise_nu=float(draws.attrs.get("student_t_nu", 5.0)),
    )
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
    )


def _national_path(scenario, calendar) -> np.ndarray | None:
    """National net migration (persons) per projected year from the scenario, if set."""
    return scenario.national_net_migration_path(calendar)


def _vra_inputs(history, scenario, base_year, calendar, lags):
    """Own and neighbours' VRA per projected year and lag, ``{lag: (year, municipality)}``."""
    from vekst.features import commuting_shares, relative_job_growth
    from vekst.features.jobs import years_with_data

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
    shares = np.eye(n_mun)
    if "commuting" in history:
        available = [y for y in years_with_data(history["commuting"]) if y < base_year]
        if available:
            year = max(available)
            matrix = commuting_shares(history, year, on_incomplete="nan")
            matrix = matrix.transpose("municipality", "work_municipality")
            matrix = matrix.assign_coords(
                municipality=matrix["municipality"].values.astype(str),
                work_municipality=matrix["work_municipality"].values.astype(str),
            ).reindex(municipality=municipalities, work_municipality=municipalities)
            values = matrix.values
            incomplete = ~np.isfinite(values).all(1)
            values = np.where(np.isfinite(values), values, 0.0)
            values[incomplete] = np.eye(n_mun)[incomplete]
            shares = values
            note["commuting_year"] = int(year)
            if incomplete.any():
                note["commuting_rows_own_only"] = municipalities[incomplete].tolist()
    if "commuting_year" not in note:
        note["commuting_year"] = None
        note["commuting"] = "no commuting matrix before the base year: VRA = own RA"
    total = ra @ shares.T
    own = ra * np.diag(shares)[None, :]
    neighbours = total - own
    vra_own, vra_neighbours = {}, {}
    for lag in lags:
        index = calendar - lag - first
        vra_own[lag] = own[index]
        vra_neighbours[lag] = neighbours[index]
    return vra_own, vra_neighbours, note


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
def _choose_detail(detail, n_draws, n_years, shape) -> str:
    if detail not in ("auto", "full", "age_groups", "totals"):
        raise ProjectionInputError(
            f"detail must be 'auto', 'full', 'age_groups' or 'totals', not {detail!r}."
        )
    if detail != "auto":
        return detail
    size = 4 * n_draws * n_years * int(np.prod(shape))
    if size <= AUTO_FULL_LIMIT_BYTES:
        return "full"
    warnings.warn(
        f"population by single age for {n_draws} draws would take {size / 1024**3:.1f} GiB; "
        "keeping age groups only (pass detail='full' to override, or fewer draws).",
        stacklevel=3,
    )
    return "age_groups"


class _Storage:
    """Receives the stock of every year from the kernel in the requested detail."""

    def __init__(self, detail, n_draws, n_years, shape, ages) -> None:
        n_mun, _, n_age = shape
        self.detail = detail
        self.population = None
        self.age_groups = None
        self.needed = detail in ("full", "age_groups")
        if detail == "full":
            self.population = np.empty((n_draws, n_years, n_mun, n_age, 2), dtype=np.float32)
        elif detail == "age_groups":
            # Rows in the kernel's (sex, age) cell order: both sexes into the same group.
            self.matrix = np.tile(age_group_matrix(ages), (2, 1)).astype(np.float32)
            self.age_groups = np.empty((n_draws, n_years, n_mun, len(AGE_GROUPS)), dtype=np.float32)

    def store(self, draws: slice, t: int, population: np.ndarray) -> None:
        if self.population is not None:
            self.population[draws, t] = population.transpose(0, 1, 3, 2)
        else:
            flat = population.reshape(-1, self.matrix.shape[0])
            grouped = flat @ self.matrix.astype(population.dtype)
            self.age_groups[draws, t] = grouped.reshape(*population.shape[:2], -1)


def _assemble(panel, municipalities, stock_years, ages, result, storage, migration, draws, attrs):
    n_draws = result.population_total.shape[0]
    coords = {
        "draw": np.arange(n_draws),
        "year": stock_years,
        "municipality": municipalities,
        "age": ages,
        "sex": list(SEXES),
    }
    for name in ("name", "county", "region", "region_name"):
        if name in panel.coords and panel[name].dims == ("municipality",):
            coords[name] = ("municipality", panel[name].values.astype(str))
    if draws is not None and "posterior_draw" in draws.coords:
        coords["posterior_draw"] = ("draw", draws["posterior_draw"].values)
    data_vars = {
        "population_total": (
            _FLOW_DIMS,
            result.population_total,
            {"units": "persons", "long_name": "population on 1 January"},
        ),
    }
    flow_meta = {
        "births": "live births during the year",
        "deaths": "deaths during the year (including children born in the year)",
        "net_migration": "net migration applied during the year",
        "net_migration_requested": "net migration drawn from the model before capping",
        "expected_births": "births at national fertility (no fertility deviation)",
        "expected_deaths": "deaths at national mortality (no mortality deviation)",
    }
    for name, text in flow_meta.items():
        data_vars[name] = (
            _FLOW_DIMS,
            getattr(result, name),
            {"units": "persons", "kind": "flow", "long_name": text},
        )
    if storage.population is not None:
        data_vars["population"] = (
            ("draw", "year", "municipality", "age", "sex"),
            storage.population,
            {"units": "persons", "kind": "stock", "long_name": "population on 1 January"},
        )
    if storage.age_groups is not None:
        coords["age_group"] = [label for label, _, _ in AGE_GROUPS]
        data_vars["population_age_group"] = (
            ("draw", "year", "municipality", "age_group"),
            storage.age_groups,
            {"units": "persons", "kind": "stock", "long_name": "population on 1 January"},
        )
    if migration is not None and migration.components is not None:
        coords["component"] = list(COMPONENTS)
        data_vars["migration_components"] = (
            ("draw", "year", "municipality", "component"),
            migration.components,
            {
                "units": "percent of population on 1 January",
                "long_name": "parts of the requested net migration rate",
            },
        )
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _version() -> str:
    from vekst import __version__

    return __version__


# --- test draws ----------------------------------------------------------------------------
def make_test_draws(
    panel: xr.Dataset,
    n_draws: int = 100,
    seed: int = 0,
    **overrides,
) -> xr.Dataset:
    """Draws in the projection contract, for tests and benchmarks.

    Plausible magnitudes (the published 2022 coefficients; net migration in %):
    ``beta_mu`` = vra_0 0.14, vra_1 0.10, vra_2 0.05, centrality 2.7, ds -0.40 with small
    posterior spread; ``year_effect_mu`` 0.3; attractiveness sd 0.3; ``sigma_base`` 0.3,
    ``sigma_pop`` 1.0; ``fert_dev``/``mort_dev`` sd 0.05.

    Parameters
    ----------
    panel
        Supplies the municipality labels.
    n_draws
        Number of draws.
    seed
        Seed.
    **overrides
        Replace a variable (array-like broadcastable to its shape, or a scalar) or an
        attr (``covariates``, ``centrality_center``, ``ds_center``); ``fert_dev=None`` /
        ``mort_dev=None`` drops the variable.

    Returns
    -------
    xarray.Dataset
    """
    rng = np.random.default_rng(seed)
    municipalities = panel["municipality"].values.astype(str)
    n_mun = len(municipalities)
    covariates = list(overrides.pop("covariates", ["vra_0", "vra_1", "vra_2", "centrality", "ds"]))
    means = {"vra_0": 0.14, "vra_1": 0.10, "vra_2": 0.05, "centrality": 2.7, "ds": -0.40}
    spreads = {"vra_0": 0.05, "vra_1": 0.05, "vra_2": 0.05, "centrality": 1.0, "ds": 0.2}
    mean = np.array([means.get(c, 0.0) for c in covariates])
    spread = np.array([spreads.get(c, 0.05) for c in covariates])
    shape_k = (n_draws, len(covariates))
    variables = {
        "beta_mu": (("draw", "covariate"), mean + 0.1 * spread * rng.standard_normal(shape_k)),
        "beta_sigma": (
            ("draw", "covariate"),
            np.abs(spread * (1 + 0.1 * rng.standard_normal(shape_k))),
        ),
        "year_effect_mu": (("draw",), 0.3 + 0.05 * rng.standard_normal(n_draws)),
        "year_effect_sigma": (("draw",), np.abs(0.3 + 0.03 * rng.standard_normal(n_draws))),
        "attractiveness": (
            ("draw", "municipality"),
            0.3 * rng.standard_normal(n_mun)[None] + 0.05 * rng.standard_normal((n_draws, n_mun)),
        ),
        "sigma_base": (("draw",), np.abs(0.3 + 0.03 * rng.standard_normal(n_draws))),
        "sigma_pop": (("draw",), np.abs(1.0 + 0.1 * rng.standard_normal(n_draws))),
        "fert_dev": (
            ("draw", "municipality"),
            0.05 * rng.standard_normal(n_mun)[None] + 0.01 * rng.standard_normal((n_draws, n_mun)),
        ),
        "mort_dev": (
            ("draw", "municipality"),
            0.05 * rng.standard_normal(n_mun)[None] + 0.01 * rng.standard_normal((n_draws, n_mun)),
        ),
    }
    attrs = {"covariates": covariates, "centrality_center": 0.0, "ds_center": 0.0}
    for key in ("centrality_center", "ds_center"):
        if key in overrides:
            attrs[key] = overrides.pop(key)
    for name, value in overrides.items():
        if name not in variables:
            raise ValueError(f"unknown draws variable {name!r}; known: {sorted(variables)}.")
        if value is None:
            del variables[name]
            continue
        dims, current = variables[name]
        value = np.broadcast_to(np.asarray(value, dtype=float), current.shape).copy()
        variables[name] = (dims, value)
    return xr.Dataset(
        variables,
        coords={
            "draw": np.arange(n_draws),
            "covariate": covariates,
            "municipality": municipalities,
        },
        attrs=attrs,
    )
