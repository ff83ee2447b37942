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

import numpy as np
import xarray as xr

from vekst.agegroups import AGE_GROUPS, age_group_matrix
from vekst.data.panel import SEXES
from vekst.models.equation import REQUIRED_VARIABLES
from vekst.projection.agepattern import AgePattern, AgePatternDataError, estimate_age_pattern
from vekst.projection.fertility import sex_ratio_at_birth
from vekst.projection.kernel import KernelInputs, run_kernel
from vekst.projection.migration import COMPONENTS
from vekst.projection.migration_inputs import (
    MigrationContext,
    ProjectionInputError,
    migration_model,
)
from vekst.projection.options import ProjectionOptions
from vekst.projection.scenario import Scenario
from vekst.projection.schedule import estimate_migration_schedule
from vekst.projection.sources import check_sources, hold_draws
from vekst.projection.vital import VitalConfig, vital_inputs

__all__ = [
    "AGE_GROUPS",
    "ProjectionInputError",
    "make_test_draws",
    "project",
]

#: Age groups of the summaries (label, first age, last age; the last is open).
#: ``detail="auto"`` keeps single ages while the population array stays below this size.
AUTO_FULL_LIMIT_BYTES = 2 * 1024**3
_FLOW_DIMS = ("draw", "year", "municipality")
POPULATION_ATTRS = {"units": "persons", "kind": "stock", "long_name": "population on 1 January"}
_REQUIRED_DRAWS = REQUIRED_VARIABLES


def project(
    panel: xr.Dataset,
    draws: xr.Dataset | None,
    options: ProjectionOptions | None = None,
    **overrides,
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
    options
        What to project and how (:class:`~vekst.projection.options.ProjectionOptions`:
        scenario, years, draws, seed, detail, ...); default the baseline to 2040.
    **overrides
        Fields of :class:`~vekst.projection.options.ProjectionOptions` by name, e.g.
        ``project(panel, draws, end_year=2030, seed=1)``; an unknown name is a
        ``TypeError`` naming it.

    Notes
    -----
    Draws with spread make every component stochastic: per-draw migration age schedules
    with yearly residual patterns, an AR(1) national TFR path with a shifting schedule,
    Poisson-like noise on births, Lee-Carter mortality shocks and chance deaths. Without
    draws, or with point estimates (every sd zero, all draws equal), the run is
    deterministic.

    Returns
    -------
    xarray.Dataset
        ``tfr`` (draw, year): the national TFR used; ``population`` (draw, year,
        municipality, age, sex) float32, ``population_total``
        (draw, year, municipality); flows ``births``, ``deaths``, ``net_migration``
        (applied), ``net_migration_requested``, ``expected_births``, ``expected_deaths``
        (draw, year, municipality; NaN in the end year, like the panel's flows);
        ``migration_components`` (draw, year, municipality, component; % of population);
        attrs ``scenario`` (JSON), ``assumptions`` (JSON) and the run settings.
    """
    o = (options or ProjectionOptions()).with_overrides(**overrides)
    scenario = o.scenario or Scenario()
    years = np.asarray(panel["year"].values, dtype=np.int64)
    base_year = int(years[-1]) if o.base_year is None else int(o.base_year)
    if base_year not in years:
        raise ProjectionInputError(
            f"base year {base_year} is not a panel year ({years[0]}-{years[-1]}); pass a "
            "year whose 1 January population the panel holds."
        )
    if o.end_year <= base_year:
        raise ProjectionInputError(
            f"end_year {o.end_year} must be after the base year {base_year}."
        )
    history = _history(panel, base_year)
    municipalities = panel["municipality"].values.astype(str)
    calendar = np.arange(base_year, o.end_year, dtype=np.int64)
    stock_years = np.arange(base_year, o.end_year + 1, dtype=np.int64)
    ages = np.asarray(panel["age"].values)
    assumptions: dict = {}

    selected, n_total = _select_draws(draws, o.n_draws, o.seed, municipalities)
    # Posterior draws make the run stochastic: vital rates, births and the migration age
    # schedule get their own uncertainty too. Without draws, or with draws that carry no
    # uncertainty (point estimates, e.g. a naive baseline), it stays deterministic.
    stochastic = selected is not None and _has_spread(selected)
    held = check_sources(o.held_sources)
    if held and selected is not None:
        selected = hold_draws(selected, held)
    vital = vital_inputs(
        panel,
        VitalConfig(
            base_year=base_year,
            end_year=o.end_year,
            scenario=scenario,
            mortality_window=o.mortality_window,
            mortality_method=o.mortality_method,
            n_draws=n_total,
            n_municipalities=len(municipalities),
            seed=o.seed,
            stochastic=stochastic,
            held=held,
            municipalities=tuple(str(m) for m in municipalities),
        ),
    )
    death_rate, asfr, tfr_factor = vital.death_rate, vital.asfr, vital.tfr_factor
    assumptions["mortality"] = vital.mortality_note
    assumptions["fertility"] = vital.fertility_note
    srb, srb_source = sex_ratio_at_birth(history, before_year=base_year)
    assumptions["sex_ratio_at_birth"] = {"value": srb, "source": srb_source}

    age_pattern, schedule = None, o.schedule
    if isinstance(schedule, AgePattern):
        age_pattern, schedule = schedule, None
    elif schedule is None and selected is not None:
        try:
            age_pattern = estimate_age_pattern(history, before_year=base_year)
        except AgePatternDataError as error:
            warnings.warn(
                f"no municipal migration age pattern ({error}); spreading net migration "
                "by the gains/losses schedule instead.",
                stacklevel=2,
            )
    if schedule is None:
        schedule = estimate_migration_schedule(history, before_year=base_year)
    schedule = schedule.reindex(municipalities)
    pattern_draws = None
    if age_pattern is not None and selected is not None:
        age_pattern = age_pattern.reindex(municipalities)
        pattern_draws = age_pattern.draws(
            n_total,
            len(calendar),
            o.seed,
            year_noise=stochastic and "age_schedule" not in held,
            uncertainty=stochastic and "age_schedule" not in held,
        )
        assumptions["migration_schedule"] = age_pattern.source
        assumptions["migration_schedule_calibrated_on"] = age_pattern.calibrated_on
    else:
        assumptions["migration_schedule"] = schedule.source

    migration = None
    if selected is not None:
        context = MigrationContext(
            scenario=scenario,
            base_year=base_year,
            calendar=calendar,
            death_rate=death_rate,
            employment_rate=o.employment_rate,
            seed=o.seed,
            record=o.record_components,
        )
        migration, migration_note = migration_model(history, selected, context)
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
        hazard=vital.hazard,
        newborn_hazard=vital.newborn_hazard,
        asfr=asfr,
        female_birth_share=1.0 / (1.0 + srb),
        in_share=schedule.in_share,
        out_propensity=schedule.out_propensity,
        mort_factor=_factor(selected, "mort_dev"),
        fert_factor=_factor(selected, "fert_dev"),
        out_cap=o.out_cap,
        age_pattern=pattern_draws,
        tfr_factor=tfr_factor,
        birth_noise=vital.birth_noise,
        fertility_noise=vital.fertility_noise,
        mortality_shift=vital.mortality_shift,
        mortality_loading=vital.mortality_loading,
        death_noise=vital.death_noise,
    )
    if o.sink is None:
        detail = _choose_detail(o.detail, n_total, len(stock_years), population0.shape)
        storage = _Storage(detail, n_total, len(stock_years), population0.shape, ages)
        store = storage.store if storage.needed else None
    else:
        # Single ages stream to the sink; nothing by age is kept in memory.
        detail = "full"
        storage = _Storage("totals", n_total, len(stock_years), population0.shape, ages)
        store = o.sink.start(
            n_total,
            {"year": stock_years, "municipality": municipalities, "age": ages, "sex": list(SEXES)},
            dict(POPULATION_ATTRS),
        )
    result = run_kernel(
        inputs,
        n_total,
        migration,
        chunk_size=o.chunk_size,
        dtype=o.dtype,
        store=store,
        trace=o.trace,
        workers=1 if o.sink is not None else o.workers,
    )
    attrs = {
        "title": "vekst posterior-predictive cohort-component projection",
        "scenario": scenario.to_json(),
        "scenario_name": scenario.name,
        "assumptions": json.dumps(assumptions, default=_json_default),
        "base_year": base_year,
        "end_year": int(o.end_year),
        "seed": int(o.seed),
        "n_draws": int(n_total),
        "chunk_size": int(o.chunk_size),
        "detail": detail,
        "out_cap": float(o.out_cap),
        "vekst_version": _version(),
        "spec_hash": "" if selected is None else str(selected.attrs.get("spec_hash", "")),
        "accounting": "P[t+1] = survivors + newborn survivors + net_migration (applied); "
        "flows labelled with their calendar year, NaN in the end year",
    }
    out = _assemble(
        panel, municipalities, stock_years, ages, result, storage, migration, selected, attrs
    )
    tfr = np.full((n_total, len(stock_years)), np.nan)
    tfr[:, :-1] = asfr.sum(1)[None] * (1.0 if tfr_factor is None else tfr_factor)
    out["tfr"] = (
        ("draw", "year"),
        tfr,
        {"long_name": "national total fertility rate of the year", "kind": "rate"},
    )
    return out


# --- inputs --------------------------------------------------------------------------------
def _history(panel: xr.Dataset, base_year: int) -> xr.Dataset:
    """The panel up to the base year, with flows of the base year and later removed."""
    from vekst.data.commuting_flows import drop_commuting_from
    from vekst.data.panel import FLOW_VARIABLES

    keep = np.asarray(panel["year"].values) <= base_year
    count = int(keep.sum())
    # A slice is a view; a boolean mask would copy every variable (the dense commuting
    # matrix is 1.8 GB at 3,570 areas).
    history = panel.isel(year=slice(0, count)) if keep[:count].all() else panel.sel(year=keep)
    for name in FLOW_VARIABLES:
        if name in history and "year" in history[name].dims:
            late = history[name].isel(year=np.flatnonzero(history["year"].values >= base_year))
            # Masking years that are already missing would only copy the variable.
            if bool(late.notnull().any()):
                history[name] = history[name].where(history["year"] < base_year)
    # The sparse commuting layout has no year dimension to mask: drop the late entries.
    history = drop_commuting_from(history, base_year)
    return history


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


def _has_spread(draws: xr.Dataset) -> bool:
    """Whether the draws carry uncertainty (more than one distinct draw or a non-zero sd)."""
    for name in ("year_effect_sigma", "sigma_base", "sigma_pop", "beta_sigma"):
        if name in draws and bool((np.abs(draws[name].values) > 0).any()):
            return True
    if draws.sizes["draw"] > 1:
        first = draws.isel(draw=0)
        for name in ("attractiveness", "beta_mu", "year_effect_mu"):
            if name in draws and not np.allclose(draws[name].values, first[name].values):
                return True
    return False


def _factor(selected: xr.Dataset | None, name: str) -> np.ndarray | None:
    if selected is None or name not in selected:
        return None
    values = selected[name].transpose("draw", "municipality").values.astype(np.float64)
    return np.exp(np.nan_to_num(values))


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
            # Sex by sex: a plain transposing copy of (sex, age) to (age, sex) runs about
            # ten times slower (its inner loop is two elements long).
            for k in range(population.shape[2]):
                self.population[draws, t, :, :, k] = population[:, :, k, :]
        else:
            flat = population.reshape(-1, self.matrix.shape[0])
            grouped = flat @ self.matrix.astype(population.dtype)
            self.age_groups[draws, t] = grouped.reshape(*population.shape[:2], -1)


def _assemble(panel, municipalities, stock_years, ages, result, storage, migration, draws, attrs):  # noqa: PLR0913
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
            dict(POPULATION_ATTRS),
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
