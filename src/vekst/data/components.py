"""Components of population change derived from stocks and national rates.

These are pure functions of :mod:`xarray` objects. They work on any panel that follows the
schema in :mod:`vekst.data.panel` (the embedded real panel or a simulated one) and on
projection draws, so that estimation and projection share one accounting convention.

Accounting convention (Lexis diagram)
-------------------------------------
Stocks ``P[a, t]`` are persons aged ``a`` completed years on 1 January of year ``t``. During
calendar year ``t`` the persons aged ``a`` on 1 January ``t`` form one cohort, a Lexis
parallelogram that ends at age ``a + 1`` on 1 January ``t + 1``. Persons born during ``t``
(a lower Lexis triangle) are aged 0 on 1 January ``t + 1``. Every flow of calendar year ``t``
is labelled with year ``t`` and with the cohort's age **at the end of the year**, i.e. on
1 January ``t + 1``. With ``S`` the survivors returned by :func:`survive` the identity

``P[t + 1] = survive(P[t], p[t]) + newborn_survivors(births[t]) + net_migration[t]``

holds exactly, cell by cell (age 0 receives only newborns and their migration; the open age
group receives the survivors of the last two ages).

Survival approximation
----------------------
National rates are central death rates m(x) per person-year by age in completed years
(Lexis squares). The cohort aged ``a`` on 1 January spends about half of the year at age
``a`` and half at age ``a + 1``, so its one-year survival is approximated by a constant
hazard equal to the mean of the two rates, ``p[a] = exp(-(m[a] + m[a + 1]) / 2)``; the open
age group uses ``exp(-m[max])``. Newborns are exposed for half a year on average at age 0:
``p_newborn = exp(-m[0] / 2)``. Migrants are treated as if they moved on 1 January of the
following year (they are not exposed to mortality in the municipality they moved to during
the year of the move), which is what makes the identity above exact.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from vekst.data.panel import SEXES
from vekst.errors import PanelError

__all__ = [
    "DERIVED_VARIABLES",
    "add_derived_components",
    "implied_births",
    "net_migration_total",
    "newborn_survival",
    "newborn_survivors",
    "residual_net_migration",
    "split_births_by_sex",
    "survival_probability",
    "survive",
]


#: Variables :func:`add_derived_components` computes.
DERIVED_VARIABLES: tuple[str, ...] = ("births", "net_migration", "net_migration_total")


class ComponentInputError(PanelError):
    """Inputs to a component function do not have the dimensions it needs."""


def _require_dims(da: xr.DataArray, dims: tuple[str, ...], what: str) -> None:
    missing = [d for d in dims if d not in da.dims]
    if missing:
        raise ComponentInputError(
            f"{what} lacks dimension(s) {missing} (has {list(da.dims)}); pass a DataArray "
            "laid out as in the panel schema (vekst.data.panel)."
        )


def survival_probability(mortality_rate: xr.DataArray) -> xr.DataArray:
    """One-year survival of the cohort aged ``a`` on 1 January (a Lexis parallelogram).

    Parameters
    ----------
    mortality_rate
        Central death rates m(x) per person-year with dimension ``age`` (0 .. max, the last
        age open) and any others (``sex``, ``year``, ``municipality``, draws ...).

    Returns
    -------
    xarray.DataArray
        Same dims and coords as ``mortality_rate``. The value at age ``a`` is the probability
        that a person aged ``a`` on 1 January of ``year`` is alive on 1 January of
        ``year + 1``: ``exp(-(m[a] + m[a + 1]) / 2)`` for ``a < max`` and ``exp(-m[max])`` for
        the open group (constant-hazard approximation, see the module docstring). NaN rates
        give NaN.
    """
    _require_dims(mortality_rate, ("age",), "mortality_rate")
    m = mortality_rate.sortby("age")
    m_next = m.shift(age=-1)
    # The open group keeps its own rate: its members stay in the same age group.
    hazard = xr.where(m["age"] == int(m["age"].values[-1]), m, (m + m_next) / 2)
    p = np.exp(-hazard)
    p.name = "survival_probability"
    p.attrs = {
        "kind": "rate",
        "units": "probability",
        "derived": "yes",
        "description": "one-year survival from 1 January year, age a, to 1 January year+1, "
        "age a+1: exp(-(m[a]+m[a+1])/2); open age group exp(-m[max])",
    }
    return p.transpose(*mortality_rate.dims)


def newborn_survival(mortality_rate: xr.DataArray) -> xr.DataArray:
    """Probability that a child born during the year is alive on 1 January of the next year.

    Parameters
    ----------
    mortality_rate
        Central death rates with dimension ``age``; only age 0 is used.

    Returns
    -------
    xarray.DataArray
        ``exp(-m[0] / 2)`` (half a year of exposure on average), without the ``age`` dim.
    """
    _require_dims(mortality_rate, ("age",), "mortality_rate")
    m0 = mortality_rate.sel(age=0, drop=True)
    p = np.exp(-m0 / 2)
    p.name = "newborn_survival"
    p.attrs = {
        "kind": "rate",
        "units": "probability",
        "derived": "yes",
        "description": "survival of a child born during the year to 1 January of the next "
        "year: exp(-m0/2)",
    }
    return p


def _align_to(other: xr.DataArray, population: xr.DataArray) -> xr.DataArray:
    """Reindex ``other`` on the dims it shares with ``population`` (missing labels -> NaN)."""
    shared = {d: population[d].values for d in other.dims if d in population.dims}
    return other.reindex(shared)


def survive(population: xr.DataArray, survival: xr.DataArray) -> xr.DataArray:
    """Survivors on 1 January ``t + 1`` of the persons alive on 1 January ``t``.

    Newborns are not included (age 0 of the result is 0); add
    :func:`newborn_survivors` of the year's births for them.

    Parameters
    ----------
    population
        Stocks with dimension ``age`` (0 .. max, the last age open) and any others.
    survival
        Output of :func:`survival_probability`; broadcast against ``population`` and
        aligned on their shared dims (a label missing in ``survival`` gives NaN).

    Returns
    -------
    xarray.DataArray
        Same dims and coords as ``population``, including its ``year`` labels: the value
        at ``year = t``, age ``a`` is the expected number of survivors aged ``a`` on 1 January
        ``t + 1``: ``P[a - 1] * p[a - 1]`` for ``0 < a < max``,
        ``P[max - 1] * p[max - 1] + P[max] * p[max]`` for the open group, 0 at age 0.
    """
    _require_dims(population, ("age",), "population")
    _require_dims(survival, ("age",), "survival")
    ages = population["age"].values
    if ages.size < 2 or np.any(np.diff(ages) != 1):
        raise ComponentInputError(
            "population 'age' must run in steps of one year with at least two ages; got "
            f"{ages[:3].tolist()} ... {ages[-2:].tolist()}."
        )
    p = _align_to(survival, population)
    alive = population * p
    moved = alive.shift(age=1, fill_value=0.0)
    top = ages[-1]
    open_group = moved.sel(age=top) + alive.sel(age=top)
    out = xr.where(moved["age"] == top, open_group, moved)
    out = out.transpose(*population.dims, *[d for d in out.dims if d not in population.dims])
    out.name = "survivors"
    return out


def split_births_by_sex(
    births: xr.DataArray, sex_ratio_at_birth: float | xr.DataArray
) -> xr.DataArray:
    """Split total births into girls and boys with a sex ratio at birth (boys per girl).

    Parameters
    ----------
    births
        Births without a ``sex`` dimension.
    sex_ratio_at_birth
        Boys per girl (about 1.05), a scalar or a DataArray broadcastable to ``births``
        (e.g. by ``year``).

    Returns
    -------
    xarray.DataArray
        ``births`` with a ``sex`` dimension ("female", "male") appended.
    """
    if "sex" in births.dims:
        raise ComponentInputError("births already has a 'sex' dimension; do not split it.")
    srb = (
        xr.DataArray(sex_ratio_at_birth)
        if np.isscalar(sex_ratio_at_birth)
        else (_align_to(sex_ratio_at_birth, births))
    )
    male_share = srb / (1 + srb)
    female_share = 1 / (1 + srb)
    out = xr.concat([births * female_share, births * male_share], dim="sex")
    return out.assign_coords(sex=list(SEXES))


def newborn_survivors(
    births: xr.DataArray,
    mortality_rate: xr.DataArray,
    *,
    sex_ratio_at_birth: float | xr.DataArray | None = None,
) -> xr.DataArray:
    """Children born during year ``t`` who are alive (aged 0) on 1 January ``t + 1``.

    Parameters
    ----------
    births
        Births of calendar year ``t`` by sex, or total (then ``sex_ratio_at_birth`` is
        needed).
    mortality_rate
        Central death rates with dims ``age`` (and ``sex``, ``year`` ...).
    sex_ratio_at_birth
        Boys per girl, used only when ``births`` has no ``sex`` dim.

    Returns
    -------
    xarray.DataArray
        ``births * exp(-m0 / 2)`` by sex, labelled with the birth year ``t``.
    """
    if "sex" not in births.dims:
        if sex_ratio_at_birth is None:
            raise ComponentInputError(
                "births has no 'sex' dimension; pass sex_ratio_at_birth (boys per girl, e.g. "
                "panel['sex_ratio_at_birth']) to split them."
            )
        births = split_births_by_sex(births, sex_ratio_at_birth)
    pn = _align_to(newborn_survival(mortality_rate), births)
    out = births * pn
    out.name = "newborn_survivors"
    return out


def _next_year(population: xr.DataArray) -> xr.DataArray:
    """``P[t + 1]`` labelled with year ``t``; NaN where year ``t + 1`` is not in the data."""
    years = population["year"].values
    following = population.reindex(year=years + 1)
    return following.assign_coords(year=years)


def residual_net_migration(
    population: xr.DataArray,
    mortality_rate: xr.DataArray,
    births: xr.DataArray | None = None,
    *,
    sex_ratio_at_birth: float | xr.DataArray | None = None,
) -> xr.DataArray:
    """Net migration by the cohort residual method.

    For calendar year ``t`` and the cohort that is aged ``a`` on 1 January ``t + 1``::

        net_migration[t, a] = P[t + 1, a] - survive(P[t], p[t])[a]        (a >= 1)
        net_migration[t, 0] = P[t + 1, 0] - births[t] * p_newborn[t]      (births given)
        net_migration[t, 0] = 0                                           (births unknown)

    where ``p`` and ``p_newborn`` come from :func:`survival_probability` and
    :func:`newborn_survival`. The result is labelled with the year of the flow ``t`` and the
    age at the **end** of that year (age on 1 January ``t + 1``); the open age group
    combines the survivors of ages ``max - 1`` and ``max``. Consequently
    ``P[t + 1] == survive(P[t], p[t]) + newborn_survivors(births[t]) + net_migration[t]``
    exactly. When ``births`` is not given the age-0 net migration is zero **by assumption**
    and the births are those implied by the age-0 stock (:func:`implied_births`).

    Parameters
    ----------
    population
        Stocks on 1 January with dims ``year``, ``age``, ``sex`` and any others
        (``municipality``, draws). Years need not be consecutive: a flow is computed only
        for years ``t`` whose ``t + 1`` is present.
    mortality_rate
        Central death rates m(x) with dims ``age`` and optionally ``sex``, ``year``,
        ``municipality``; broadcast against ``population``.
    births
        Births during each year ``t``, by sex or total (then ``sex_ratio_at_birth`` splits
        them).
    sex_ratio_at_birth
        Boys per girl, needed only for total ``births``.

    Returns
    -------
    xarray.DataArray
        Net migration (in-migrants minus out-migrants, persons) with the dims of
        ``population``; NaN in the last year and wherever a rate is missing.
    """
    _require_dims(population, ("year", "age", "sex"), "population")
    p = survival_probability(mortality_rate)
    nxt = _next_year(population)
    migration = nxt - survive(population, p)
    if births is not None:
        newborns = newborn_survivors(births, mortality_rate, sex_ratio_at_birth=sex_ratio_at_birth)
        newborns = _align_to(newborns, population)
        age0 = nxt.sel(age=0) - newborns
    else:
        # Zero where the age-0 stock exists, NaN where the next year (or the rate) is missing.
        pn = _align_to(newborn_survival(mortality_rate), population)
        age0 = nxt.sel(age=0) * 0 + pn * 0
    migration = xr.where(migration["age"] == 0, age0, migration)
    migration = migration.transpose(*population.dims)
    migration.name = "net_migration"
    migration.attrs = {
        "kind": "flow",
        "units": "persons",
        "derived": "yes",
        "method": "cohort residual: P[t+1] - survive(P[t]) - newborn survivors; age = age on "
        "1 January t+1"
        + ("" if births is not None else "; age-0 net migration set to 0 (births unknown)"),
    }
    return migration


def implied_births(
    population: xr.DataArray, mortality_rate: xr.DataArray, *, by_sex: bool = False
) -> xr.DataArray:
    """Births of each year implied by the age-0 stock on 1 January of the next year.

    Assumes zero net migration of children born during the year (the convention of
    :func:`residual_net_migration` without births): ``births[t] = P[t + 1, 0] / p_newborn[t]``.

    Parameters
    ----------
    population
        Stocks with dims ``year``, ``age``, ``sex`` and any others.
    mortality_rate
        Central death rates with dim ``age`` (age 0 is used).
    by_sex
        Keep the ``sex`` dimension; otherwise return the total of both sexes.

    Returns
    -------
    xarray.DataArray
        Births of calendar year ``t`` (labelled ``t``), NaN in the last year.
    """
    _require_dims(population, ("year", "age", "sex"), "population")
    age0 = _next_year(population).sel(age=0, drop=True)
    pn = _align_to(newborn_survival(mortality_rate), age0)
    births = age0 / pn
    if not by_sex:
        births = births.sum("sex", min_count=1)
    births.name = "births"
    births.attrs = {
        "kind": "flow",
        "units": "persons",
        "derived": "yes",
        "description": "proxy from the age-0 stock: P[0, t+1] / exp(-m0/2); assumes no net "
        "migration of infants born during the year",
    }
    return births


def net_migration_total(net_migration: xr.DataArray) -> xr.DataArray:
    """Sum net migration over age and sex, keeping NaN where every cell is NaN.

    Parameters
    ----------
    net_migration
        Output of :func:`residual_net_migration` (or observed net migration by age and sex).

    Returns
    -------
    xarray.DataArray
        Net migration of the calendar year by the remaining dims (``municipality``,
        ``year``).
    """
    dims = [d for d in ("age", "sex") if d in net_migration.dims]
    total = net_migration.sum(dims, min_count=1)
    total.name = "net_migration_total"
    total.attrs = {**net_migration.attrs, "description": "net migration summed over age, sex"}
    return total


def _sex_ratio_by_year(panel: xr.Dataset) -> xr.DataArray | float | None:
    if "sex_ratio_at_birth" not in panel:
        return None
    srb = panel["sex_ratio_at_birth"]
    if "hist_year" in srb.dims:
        srb = srb.rename(hist_year="year")
    return srb


def add_derived_components(panel: xr.Dataset) -> xr.Dataset:
    """Add births, net migration by age and sex, and total net migration to a panel.

    Observed births (``panel["births"]`` with ``attrs["derived"] != "yes"``) are used as
    they are, split by sex with ``panel["sex_ratio_at_birth"]``; otherwise births are the
    proxy of :func:`implied_births` and age-0 net migration is zero. Net migration comes
    from :func:`residual_net_migration` with ``panel["mortality_rate"]``, so that
    ``population[t + 1] == survive(population[t]) + newborn_survivors(births[t]) +
    net_migration[t]`` holds exactly for the returned panel.

    Parameters
    ----------
    panel
        A panel with ``population`` and ``mortality_rate`` (any code vintage, real or
        simulated).

    Returns
    -------
    xarray.Dataset
        A new dataset with ``births`` (when not observed), ``net_migration`` and
        ``net_migration_total`` (all ``derived="yes"``); the input is not modified.
    """
    for name in ("population", "mortality_rate"):
        if name not in panel:
            raise ComponentInputError(
                f"panel has no '{name}'; derived components need population stocks and "
                "national mortality rates."
            )
    population = panel["population"]
    mortality = panel["mortality_rate"]
    out = panel.copy()
    observed = "births" in panel and panel["births"].attrs.get("derived", "no") != "yes"
    if observed:
        migration = residual_net_migration(
            population,
            mortality,
            panel["births"],
            sex_ratio_at_birth=_sex_ratio_by_year(panel),
        )
    else:
        migration = residual_net_migration(population, mortality)
        births = implied_births(population, mortality)
        births.attrs.update(
            source="derived from population and mortality_rate",
            note="proxy from the age-0 stock, not observed births",
        )
        out["births"] = births.transpose(*[d for d in population.dims if d in births.dims])
    migration.attrs.update(
        source="derived from population and mortality_rate (and births if observed)",
        description="net migration (in minus out) during the calendar year by the cohort "
        "residual method; age is the age on 1 January of the next year; includes the "
        "error of applying national mortality to each municipality",
    )
    out["net_migration"] = migration
    out["net_migration_total"] = net_migration_total(migration)
    out["net_migration_total"].attrs.update(source="derived from net_migration")
    return out
