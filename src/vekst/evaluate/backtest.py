"""Rolling-origin backtests: fit on the years before an origin, project, compare.

For each origin year ``O`` the panel is cut by :func:`truncate_panel` so that nothing
observed on or after 1 January ``O`` (beyond the 1 January ``O`` stock itself) reaches the
fit, the baselines or the projection. Each method projects the stock of 1 January ``O``
``1 .. horizon`` years ahead with the same cohort-component engine
(:func:`vekst.projection.project`); the forecasts are scored against the observed stocks
of the full panel by municipality and planner age group (see
:mod:`vekst.evaluate.metrics` for the scores).

Methods
-------
``bayes``
    The hierarchical model (:func:`vekst.fit.fit_model`) and its posterior-predictive
    projection; an ensemble (median = point, intervals, CRPS).
``ols``
    The published OLS attractiveness model, projected without noise.
``naive5`` / ``naive10`` (any ``naive<k>``)
    Each municipality's mean net migration rate of the last ``k`` years.
``no_migration``
    Births and deaths only.

Job-growth covariates
---------------------
VRA needs employment and commuting counts. When the truncated panel has no VRA in any
fitted year (on the embedded data: every origin up to 2018) and no spec is given, the
``no_jobs`` spec (centrality and DS) is used instead of the default spec, and the note of
the origin says so. DS needs a national employment-rate profile: it is estimated from the
truncated panel's employment counts where there are any, otherwise an a-priori profile
(:data:`PRIOR_EMPLOYMENT_PROFILE`) is used, the same in fit and projection.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from vekst.agegroups import AGE_GROUPS
from vekst.errors import InputError
from vekst.evaluate.metrics import DEFAULT_LEVELS, score_ensemble, summarise_scores
from vekst.models.spec import ModelSpec, load_spec

__all__ = [
    "DEFAULT_METHODS",
    "PLANNER_AGE_GROUPS",
    "PRIOR_EMPLOYMENT_PROFILE",
    "SIZE_CLASSES",
    "BacktestError",
    "BacktestResult",
    "age_group_population",
    "backtest",
    "size_class",
    "truncate_panel",
]

DEFAULT_METHODS: tuple[str, ...] = ("bayes", "ols", "naive5", "naive10", "no_migration")
#: Age groups municipal planners budget by (label, first age, last age; last open).
PLANNER_AGE_GROUPS = AGE_GROUPS
TOTAL = "total"
#: Size classes by population on 1 January of the origin (label, lower bound inclusive).
SIZE_CLASSES: tuple[tuple[str, float], ...] = (
    ("<2k", 0.0),
    ("2-5k", 2_000.0),
    ("5-20k", 5_000.0),
    ("20-50k", 20_000.0),
    ("50k+", 50_000.0),
)
#: Parameters of :func:`vekst.features.employment_curve` used for DS when no employment
#: counts exist before the origin: an 80 % prime-age plateau entered around 19 and left
#: around 64, a round-number profile chosen before looking at any employment data.
PRIOR_EMPLOYMENT_PROFILE: dict[str, float] = {
    "plateau": 0.8,
    "rise_age": 19.0,
    "rise_scale": 2.0,
    "fall_age": 64.0,
    "fall_scale": 3.0,
}
_NAIVE = re.compile(r"^naive(?P<years>\d+)$")
_STOCK_KINDS = ("stock",)


class BacktestError(InputError):
    """A backtest cannot run as asked; the message names the origin/method and the fix."""


# --- truncation ----------------------------------------------------------------------------
def truncate_panel(panel: xr.Dataset, origin: int) -> xr.Dataset:
    """The panel as it was known on 1 January ``origin``.

    * every dimension called ``year`` keeps the years up to ``origin``; every other
      dimension whose name ends in ``year`` (e.g. ``hist_year`` of the national rate
      histories) keeps the calendar years before ``origin``: later labels are dropped, not
      masked;
    * in year ``origin`` only stocks (``attrs["kind"] == "stock"``) keep their values; flows,
      rates and shares of calendar year ``origin`` (which end after 1 January ``origin``)
      become NaN;
    * the variables derived from stocks (those of
      :data:`vekst.data.components.DERIVED_VARIABLES` -- ``births``, ``net_migration``,
      ``net_migration_total`` -- marked ``attrs["derived"] == "yes"``) are dropped and
      recomputed from the truncated stocks with
      :func:`vekst.data.components.add_derived_components`, so no value computed from a
      later stock survives.

    Parameters
    ----------
    panel
        A panel (see :mod:`vekst.data.panel`).
    origin
        First year to forecast; its 1 January stock is the last observation kept.

    Returns
    -------
    xarray.Dataset
        A new dataset; ``attrs["backtest_origin"]`` records the cut.

    Raises
    ------
    BacktestError
        If ``origin`` is not a panel year or leaves fewer than two stock years.
    """
    years = np.asarray(panel["year"].values, dtype=np.int64)
    if origin not in years:
        raise BacktestError(
            f"origin {origin} is not a year of the panel ({years[0]}-{years[-1]}); choose an "
            "origin whose 1 January population the panel holds."
        )
    if int(np.sum(years < origin)) < 1:
        raise BacktestError(
            f"origin {origin} leaves no calendar year of flows before it (panel starts "
            f"{years[0]}); choose a later origin."
        )
    from vekst.data.components import DERIVED_VARIABLES, add_derived_components

    selection: dict[str, np.ndarray] = {}
    for dim in panel.dims:
        name = str(dim)
        if name == "year":
            selection[name] = np.flatnonzero(years <= origin)
        elif name.endswith("year"):
            labels = np.asarray(panel[name].values)
            selection[name] = np.flatnonzero(labels.astype(np.int64) < origin)
    truncated = panel.isel(selection)
    # Observed components (attrs derived != "yes") are flows like any other: cut and masked.
    derived = [
        n
        for n in DERIVED_VARIABLES
        if n in truncated.data_vars and truncated[n].attrs.get("derived", "no") == "yes"
    ]
    truncated = truncated.drop_vars(derived)
    for name in list(truncated.data_vars):
        da = truncated[name]
        if "year" in da.dims and da.attrs.get("kind") not in _STOCK_KINDS:
            masked = da.where(da["year"] < origin)
            masked.attrs = dict(da.attrs)
            truncated[name] = masked
    if derived:
        if "mortality_rate" not in truncated:
            raise BacktestError(
                f"the panel's {derived} are derived from stocks but it has no "
                "'mortality_rate' to derive them again after the cut; add national death "
                "rates or observed components."
            )
        recomputed = add_derived_components(truncated)
        for name in derived:
            truncated[name] = recomputed[name]
    truncated.attrs = {**panel.attrs, "backtest_origin": int(origin)}
    _assert_no_future(truncated, origin)
    return truncated


def _assert_no_future(panel: xr.Dataset, origin: int) -> None:
    """Guard: fail loudly if anything after the cut survived (a bug, not a user error)."""
    for dim in panel.dims:
        name = str(dim)
        if name == "year" and int(panel[name].max()) > origin:
            raise AssertionError(f"truncation kept year {int(panel[name].max())} > {origin}")
        if name != "year" and name.endswith("year") and panel.sizes[name]:
            if int(np.max(panel[name].values)) >= origin:
                raise AssertionError(f"truncation kept {name} >= {origin}")
    for name, da in panel.data_vars.items():
        if "year" in da.dims and da.attrs.get("kind") not in _STOCK_KINDS:
            if bool(da.sel(year=origin).notnull().any()):
                raise AssertionError(f"'{name}' has values in the origin year {origin}")


# --- observed and forecast age groups ------------------------------------------------------
def _group_matrix(ages: np.ndarray) -> np.ndarray:
    ages = np.asarray(ages)
    matrix = np.zeros((len(ages), len(PLANNER_AGE_GROUPS) + 1))
    for g, (_, low, high) in enumerate(PLANNER_AGE_GROUPS):
        matrix[(ages >= low) & (ages <= (np.inf if high is None else high)), g] = 1.0
    matrix[:, -1] = 1.0
    return matrix


def _group_labels() -> list[str]:
    return [label for label, _, _ in PLANNER_AGE_GROUPS] + [TOTAL]


def age_group_population(population: xr.DataArray) -> xr.DataArray:
    """Sum a population by single age (and sex) into the planner age groups and the total.

    Parameters
    ----------
    population
        Persons with dim ``age`` (and optionally ``sex``, summed).

    Returns
    -------
    xarray.DataArray
        Dim ``age_group`` (:data:`PLANNER_AGE_GROUPS` labels, then ``"total"``) in place of
        ``age``.
    """
    if "sex" in population.dims:
        population = population.sum("sex")
    matrix = xr.DataArray(
        _group_matrix(population["age"].values),
        dims=("age", "age_group"),
        coords={"age": population["age"].values, "age_group": _group_labels()},
    )
    return xr.dot(population, matrix, dim="age")


def size_class(population: np.ndarray | Sequence[float]) -> np.ndarray:
    """Size-class label of each population (see :data:`SIZE_CLASSES`).

    Parameters
    ----------
    population
        Total populations.

    Returns
    -------
    numpy.ndarray
        Labels (str).
    """
    values = np.asarray(population, dtype=np.float64)
    bounds = np.array([low for _, low in SIZE_CLASSES])
    labels = np.array([label for label, _ in SIZE_CLASSES])
    return labels[np.clip(np.searchsorted(bounds, values, side="right") - 1, 0, None)]


# --- result --------------------------------------------------------------------------------
@dataclass
class BacktestResult:
    """Scores, forecasts and notes of a backtest.

    Attributes
    ----------
    scores
        One row per origin, method, horizon, municipality and age group (``"total"`` is
        the whole population): ``observed``, ``point`` (median), interval bounds, ``pe``,
        ``ape``, ``crps``, ``crps_pct`` and ``cover_50/80/95`` (see
        :func:`vekst.evaluate.metrics.score_ensemble`), plus ``size_class`` (population on
        1 January of the origin).
    forecasts
        ``{(origin, method): DataArray (draw, year, municipality, age_group)}``.
    observed
        Observed population ``(year, municipality, age_group)``.
    notes
        Per origin: the spec used and why, the employment profile, fit diagnostics,
        baseline details and timings.
    settings
        The arguments of the run.
    """

    scores: pd.DataFrame
    forecasts: dict[tuple[int, str], xr.DataArray]
    observed: xr.DataArray
    notes: dict[int, dict] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def summary(
        self,
        by: Sequence[str] = ("origin", "method", "horizon"),
        *,
        age_group: str | None = TOTAL,
        size_class: str | None = None,
    ) -> pd.DataFrame:
        """Aggregated scores (see :func:`vekst.evaluate.metrics.summarise_scores`).

        Parameters
        ----------
        by
            Grouping columns, e.g. ``("origin", "method", "horizon", "size_class")``.
        age_group
            Keep one age group (default the totals); ``None`` keeps all rows (then add
            ``"age_group"`` to ``by``).
        size_class
            Keep one size class; ``None`` keeps all.
        """
        rows = self.scores
        if age_group is not None:
            rows = rows[rows["age_group"] == age_group]
        if size_class is not None:
            rows = rows[rows["size_class"] == size_class]
        return summarise_scores(rows, by=by)

    def table(self) -> pd.DataFrame:
        """The comparison table of totals: per origin, method and horizon, plus size classes.

        Returns
        -------
        pandas.DataFrame
            Columns ``origin, method, horizon, size_class`` (``"all"`` for every
            municipality), ``age_group`` and the summary scores; rows for the totals by
            size class and for every age group over all municipalities follow the
            all-municipality totals.
        """
        keys = ["origin", "method", "horizon"]
        overall = self.summary(keys).assign(size_class="all", age_group=TOTAL)
        sizes = self.summary([*keys, "size_class"]).assign(age_group=TOTAL)
        ages = self.summary([*keys, "age_group"], age_group=None).assign(size_class="all")
        ages = ages[ages["age_group"] != TOTAL]
        table = pd.concat([overall, sizes, ages], ignore_index=True)
        front = ["origin", "method", "horizon", "size_class", "age_group"]
        return table[front + [c for c in table.columns if c not in front]]

    def to_csv(self, path: str | Path, *, which: str = "table") -> Path:
        """Write :meth:`table` (``which="table"``) or :attr:`scores` (``"scores"``) as CSV.

        The file is written to a temporary file in the same folder and renamed.
        """
        frame = self.table() if which == "table" else self.scores
        return write_csv_atomic(frame, path)


def write_csv_atomic(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a frame to CSV atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".csv.tmp")
    os.close(handle)
    try:
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


# --- the backtest --------------------------------------------------------------------------
def _employment_profile(truncated: xr.Dataset) -> tuple[xr.DataArray, str]:
    """Employment rates for DS from the truncated panel, or the a-priori profile."""
    from vekst.features import employment_curve, estimate_employment_profile
    from vekst.features.jobs import FeatureError

    if "employed_residence" in truncated and bool(truncated["employed_residence"].notnull().any()):
        try:
            profile = estimate_employment_profile(truncated)
            return profile, "estimated from employment counts before the origin"
        except FeatureError as error:  # too little data: fall back, and say so
            reason = f"estimation failed ({error}); "
    else:
        reason = "no employment counts before the origin; "
    ages = truncated["age"].values
    curve = employment_curve(ages, **PRIOR_EMPLOYMENT_PROFILE)
    profile = xr.DataArray(
        np.repeat(curve[:, None], 2, axis=1),
        dims=("age", "sex"),
        coords={"age": ages, "sex": ["female", "male"]},
        attrs={"method": "a-priori profile", **PRIOR_EMPLOYMENT_PROFILE},
    )
    return profile, reason + f"a-priori profile {PRIOR_EMPLOYMENT_PROFILE}"


def _vra_names(spec: ModelSpec) -> list[str]:
    return [c for c in spec.migration.covariates if c.startswith("vra")]


def _resolve_spec(spec, truncated, employment_rate, origin) -> tuple[ModelSpec, str]:
    """The spec for one origin and the reason it was chosen."""
    from vekst.features.jobs import FeatureError
    from vekst.models.data import migration_data

    chosen = spec if isinstance(spec, ModelSpec) else load_spec(spec)
    vra = _vra_names(chosen)
    if not vra:
        return chosen, f"spec '{chosen.name}' (no job-growth covariates)"
    try:
        data = migration_data(truncated, chosen, employment_rate=employment_rate)
        index = [data.covariates.index(c) for c in vra]
        available = all(bool(data.x_available[i].any()) for i in index)
    except FeatureError:
        available = False
    if available:
        return chosen, f"spec '{chosen.name}' (VRA observed before {origin})"
    if spec is None:
        fallback = load_spec("no_jobs")
        return fallback, (
            f"spec 'no_jobs' (centrality + DS): job growth (VRA) is not observed in any year "
            f"before {origin}, so the default spec '{chosen.name}' cannot use it"
        )
    return chosen, (
        f"spec '{chosen.name}' as given, but VRA is missing in every year before {origin}: "
        "its coefficients rest on the prior alone and the projection holds job growth at "
        "the national rate"
    )


def _forecast_groups(projection: xr.Dataset, years: np.ndarray) -> xr.DataArray:
    """Projected population by planner age group and total, (draw, year, municipality, group)."""
    labels = [label for label, _, _ in PLANNER_AGE_GROUPS]
    if (
        "population_age_group" in projection
        and [str(g) for g in projection["age_group"].values] == labels
    ):
        groups = projection["population_age_group"]
        total = projection["population_total"].expand_dims(age_group=[TOTAL])
        out = xr.concat([groups.astype(np.float64), total], dim="age_group")
    elif "population" in projection:
        out = age_group_population(projection["population"].astype(np.float64))
    else:
        raise BacktestError(
            "the projection holds neither 'population_age_group' with the planner groups nor "
            "'population' by single age; run it with detail='full' or 'age_groups'."
        )
    out = out.sel(year=years).transpose("draw", "year", "municipality", "age_group")
    keep = [c for c in out.coords if c in out.dims]
    out = out.reset_coords([c for c in out.coords if c not in keep], drop=True)
    return out.astype(np.float32)


def _parse_methods(methods: Sequence[str]) -> list[str]:
    out = []
    for method in methods:
        if method in ("bayes", "ols", "no_migration") or _NAIVE.match(method):
            out.append(method)
        else:
            raise BacktestError(
                f"unknown backtest method {method!r}; use bayes, ols, naive<k> (e.g. naive5) "
                "or no_migration."
            )
    if len(set(out)) != len(out):
        raise BacktestError(f"methods are repeated: {list(methods)}.")
    return out


def backtest(
    panel: xr.Dataset,
    origins: Sequence[int],
    horizon: int,
    *,
    spec: ModelSpec | str | Path | None = None,
    draws: int = 500,
    tune: int = 500,
    chains: int = 2,
    n_draws: int = 200,
    seed: int = 20240101,
    methods: Sequence[str] = DEFAULT_METHODS,
    observed: xr.Dataset | None = None,
    sampler: str = "nutpie",
    employment_rate: xr.DataArray | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
    progress: bool = False,
    log=None,
) -> BacktestResult:
    """Rolling-origin backtest of the Bayesian forecast and the baselines.

    Parameters
    ----------
    panel
        The data the forecasts may learn from; each origin sees only
        ``truncate_panel(panel, origin)``.
    origins
        Origin years (1 January stocks are the jump-off).
    horizon
        Years ahead to score (1 .. horizon); years beyond the observed data are skipped.
    spec
        Model spec (object, path or shipped name); default: the default spec when its VRA
        is observed before the origin, else ``no_jobs`` (stated in ``notes``).
    draws, tune, chains
        Sampler settings of the Bayesian fit (per chain).
    n_draws
        Posterior draws projected.
    seed
        Seed of the fit, the draw subset and the projection shocks.
    methods
        Any of ``bayes``, ``ols``, ``naive<k>``, ``no_migration``.
    observed
        Panel with the outcomes to score against (default ``panel``). Passing a separate
        panel lets a test poison ``panel`` after the origin and compare.
    sampler
        Sampler of :func:`vekst.fit.fit_model`.
    employment_rate
        National employment rates (age, sex) for DS; default: see the module docstring.
    levels
        Interval levels scored.
    progress
        Show the sampler's progress bar.
    log
        Callable receiving progress messages (e.g. ``print``); silent when ``None``.

    Returns
    -------
    BacktestResult

    Raises
    ------
    BacktestError
        For an origin outside the data, no observed year after an origin, or an unknown
        method.
    """
    from vekst.models.data import migration_data, vital_data
    from vekst.projection import project

    methods = _parse_methods(methods)
    observed = panel if observed is None else observed
    if horizon < 1:
        raise BacktestError(f"horizon must be at least 1 year; got {horizon}.")
    obs_years = np.asarray(observed["year"].values, dtype=np.int64)
    codes = panel["municipality"].values.astype(str)
    observed_groups = age_group_population(
        observed["population"].sel(municipality=codes).astype(np.float64)
    ).transpose("year", "municipality", "age_group")
    say = log or (lambda message: None)

    scores: list[pd.DataFrame] = []
    forecasts: dict[tuple[int, str], xr.DataArray] = {}
    notes: dict[int, dict] = {}
    for origin in sorted(int(o) for o in origins):
        target = np.array([y for y in range(origin + 1, origin + horizon + 1) if y in obs_years])
        if target.size == 0:
            raise BacktestError(
                f"origin {origin}: no observed stock in {origin + 1}-{origin + horizon} "
                f"(observed data end in {obs_years[-1]}); choose an earlier origin."
            )
        truncated = truncate_panel(panel, origin)
        note: dict = {"scored_years": [int(y) for y in target], "timings_s": {}}
        if employment_rate is None:
            profile, note["employment_profile"] = _employment_profile(truncated)
        else:
            profile, note["employment_profile"] = employment_rate, "supplied"
        needs_model = any(m in ("bayes", "ols") for m in methods)
        migration = None
        if needs_model:
            chosen, note["spec"] = _resolve_spec(spec, truncated, profile, origin)
            note["spec_name"] = chosen.name
            migration = migration_data(truncated, chosen, employment_rate=profile)
            note["fit_years"] = [int(migration.years[0]), int(migration.years[-1])]
        end_year = int(target[-1])
        for method in methods:
            say(f"origin {origin}: {method}")
            start = time.perf_counter()
            if method == "bayes":
                # imported here: pymc is slow to import and the baselines do not need it
                from vekst.fit import fit_model, projection_draws

                births = vital_data(truncated, "births") if chosen.fertility.enabled else None
                deaths = vital_data(truncated, "deaths") if chosen.mortality.enabled else None
                fit = fit_model(
                    chosen,
                    migration,
                    births,
                    deaths,
                    draws=draws,
                    tune=tune,
                    chains=chains,
                    seed=seed,
                    sampler=sampler,
                    progress=progress,
                )
                diagnostics = fit.diagnostics.as_dict()
                note["diagnostics"] = diagnostics
                if not fit.diagnostics.converged:
                    say(
                        f"origin {origin}: fit did not pass the convergence gate: "
                        + "; ".join(diagnostics["problems"])
                    )
                method_draws = projection_draws(fit.idata, n_draws, seed=seed)
            elif method == "ols":
                from vekst.evaluate.baselines import ols_draws

                method_draws = ols_draws(migration)
                note["ols"] = {
                    "r2": method_draws.attrs["ols_r2"],
                    "beta": dict(
                        zip(
                            method_draws.attrs["covariates"],
                            method_draws["beta_mu"].values[0].tolist(),
                            strict=True,
                        )
                    ),
                    "year_effect": float(method_draws["year_effect_mu"].values[0]),
                }
            elif method == "no_migration":
                method_draws = None
            else:
                from vekst.evaluate.baselines import naive_draws

                years = int(_NAIVE.match(method)["years"])
                method_draws = naive_draws(truncated, origin, years)
                note[f"{method}_years"] = method_draws.attrs["naive_years"]
            projection = project(
                truncated,
                method_draws,
                base_year=origin,
                end_year=end_year,
                seed=seed,
                employment_rate=profile,
                detail="age_groups",
                record_components=False,
            )
            forecast = _forecast_groups(projection, target)
            forecasts[(origin, method)] = forecast
            scores.append(
                _score(
                    forecast,
                    observed_groups,
                    observed_groups.sel(year=origin),
                    origin,
                    method,
                    levels,
                    point=method != "bayes",
                )
            )
            note["timings_s"][method] = round(time.perf_counter() - start, 1)
        notes[origin] = note
    table = pd.concat(scores, ignore_index=True)
    settings = {
        "origins": [int(o) for o in origins],
        "horizon": int(horizon),
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "n_draws": n_draws,
        "seed": seed,
        "methods": methods,
        "sampler": sampler,
        "spec": None if spec is None else str(getattr(spec, "name", spec)),
    }
    return BacktestResult(table, forecasts, observed_groups, notes, settings)


def _score(forecast, observed_groups, at_origin, origin, method, levels, point) -> pd.DataFrame:
    """Score one origin's forecast of one method into long rows."""
    years = forecast["year"].values
    municipalities = forecast["municipality"].values.astype(str)
    groups = forecast["age_group"].values.astype(str)
    y = observed_groups.sel(year=years, municipality=municipalities, age_group=groups).values
    result = score_ensemble(forecast.values, y, axis=0, levels=levels, point_forecast=point)
    shape = y.shape
    year_grid, mun_grid, group_grid = np.meshgrid(
        np.arange(shape[0]), np.arange(shape[1]), np.arange(shape[2]), indexing="ij"
    )
    base_total = at_origin.sel(municipality=municipalities, age_group=TOTAL).values
    names = (
        observed_groups["name"].sel(municipality=municipalities).values.astype(str)
        if "name" in observed_groups.coords
        else municipalities
    )
    frame = pd.DataFrame(
        {
            "origin": origin,
            "method": method,
            "horizon": (years - origin)[year_grid.ravel()],
            "year": years[year_grid.ravel()],
            "municipality": municipalities[mun_grid.ravel()],
            "name": names[mun_grid.ravel()],
            "size_class": size_class(base_total)[mun_grid.ravel()],
            "population_origin": base_total[mun_grid.ravel()],
            "age_group": groups[group_grid.ravel()],
            "observed": y.ravel(),
        }
    )
    for key, values in result.items():
        frame[key] = np.asarray(values).ravel()
    return frame
