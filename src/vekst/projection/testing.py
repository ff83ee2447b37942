"""Small synthetic panels for projection tests and benchmarks.

:func:`toy_panel` builds a schema-conforming panel (population by single age and sex,
national death and fertility rates, residual net migration by age and sex, births,
deaths, employment, commuting, centrality) with a few municipalities in a few regions.
It is a fixture generator, not a demographic simulator: the numbers are plausible, not
calibrated.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from vekst.data.commuting_flows import FLOW_DIM, HOME, SPARSE_FROM, WORK, YEAR
from vekst.data.panel import SEXES

__all__ = ["toy_panel"]



def _flow_attrs() -> dict:
    return {"kind": "flow", "units": "persons", "derived": "no"}


def _gompertz(ages: np.ndarray, level: float) -> np.ndarray:
    """Death rates with an infant bump and a Gompertz slope, capped below 1."""
    rate = level * (0.004 * np.exp(-2.0 * ages) + 0.00005 + 0.00002 * np.exp(0.095 * ages))
    return np.minimum(rate, 0.9)


def _toy_commuting(
    employed: np.ndarray, codes: list[str], years: np.ndarray, *, sparse: bool
) -> xr.DataArray:
    """Residents work mostly at home, some in the first municipality; none in the last year.

    ``employed`` is (municipality, year) before rounding. The sparse layout lists the same
    cells (computed by the same operations, so the numbers agree exactly) without the
    n x n x year array.
    """
    n, n_years = employed.shape
    own = np.where(np.arange(n) == 0, 0.95, 0.7)[:, None]
    at_home = own * employed
    to_first = (1 - own) * employed
    attrs = {"kind": "flow", "units": "persons", "derived": "no"}
    if not sparse:
        commuting = np.zeros((n, n, n_years))
        index = np.arange(n)
        commuting[index, index] = at_home
        commuting[:, 0] += to_first
        commuting[..., -1] = np.nan
        np.round(commuting, out=commuting)
        return xr.DataArray(
            commuting,
            dims=("municipality", "work_municipality", "year"),
            coords={"work_municipality": codes},
            attrs=attrs,
        )
    at_home[0] += to_first[0]
    home = np.concatenate([np.arange(n), np.arange(1, n)])
    work = np.concatenate([np.arange(n), np.zeros(n - 1, dtype=int)])
    values = np.round(np.concatenate([at_home, to_first[1:]])[:, :-1])  # (flow, year)
    flow_year = np.broadcast_to(years[None, :-1], values.shape)
    keep = values != 0
    code_array = np.asarray(codes)
    return xr.DataArray(
        values[keep],
        dims=(FLOW_DIM,),
        coords={
            HOME: (FLOW_DIM, code_array[np.broadcast_to(home[:, None], values.shape)[keep]]),
            WORK: (FLOW_DIM, code_array[np.broadcast_to(work[:, None], values.shape)[keep]]),
            YEAR: (FLOW_DIM, flow_year[keep]),
        },
        attrs={**attrs, "layout": "sparse (coordinate list)"},
    )


def toy_panel(
    n_municipalities: int = 6,
    years: tuple[int, int] = (2005, 2022),
    *,
    n_regions: int = 2,
    max_age: int = 105,
    seed: int = 0,
    size: float = 3000.0,
    migration_sd: float = 1.0,
    sparse_commuting: bool | None = None,
) -> xr.Dataset:
    """A small consistent panel.

    Parameters
    ----------
    n_municipalities
        Number of municipalities (codes ``3001``, ``3002``, ...; 2020-vintage county 30).
    years
        First and last 1 January stock year.
    n_regions
        Municipalities are dealt round-robin into this many regions.
    max_age
        Open age group.
    seed
        Seed.
    size
        Typical population of a municipality (sizes vary log-normally around it).
    migration_sd
        Spread of the yearly net migration rate between municipalities (%).
    sparse_commuting
        Store ``commuting`` in the sparse layout (:mod:`vekst.data.commuting_flows`);
        ``None``: sparse from :data:`~vekst.data.commuting_flows.SPARSE_FROM` units.

    Returns
    -------
    xarray.Dataset
        Panel following :mod:`vekst.data.panel` (validate with ``code_vintage=None`` or
        2020).
    """
    from vekst.data.components import residual_net_migration

    rng = np.random.default_rng(seed)
    year_values = np.arange(years[0], years[1] + 1)
    n_years = len(year_values)
    ages = np.arange(max_age + 1)
    n_age = len(ages)
    codes = [f"30{i + 1:02d}" for i in range(n_municipalities)]
    regions = [f"R{i % n_regions + 1}" for i in range(n_municipalities)]

    # National rates: mortality improving ~1.5 % a year, fertility ~1.6 children per woman.
    m_base = np.stack([_gompertz(ages, 0.85), _gompertz(ages, 1.15)])  # (sex, age)
    improvement = np.exp(-0.015 * (year_values - year_values[0]))
    mortality = m_base[None] * improvement[:, None, None]  # (year, sex, age)
    asfr_shape = np.exp(-0.5 * ((ages - 30.5) / 5.5) ** 2) * ((ages >= 15) & (ages <= 49))
    tfr = 1.6 + 0.1 * np.sin(np.arange(n_years) / 3)
    fertility = asfr_shape[None] / asfr_shape.sum() * tfr[:, None]  # (year, age)
    srb = 1.05

    # Base population: a stationary-ish age structure, scaled per municipality.
    survivorship = np.exp(-np.cumsum(m_base, axis=1))
    scale = size * np.exp(rng.normal(0.0, 0.8, n_municipalities))
    shape = survivorship / survivorship.sum()
    population = np.zeros((n_municipalities, n_years, n_age, 2))
    population[:, 0] = np.round(scale[:, None, None] * shape.T[None] * 2)
    # Migrants are young adults and small children.
    profile = np.exp(-0.5 * ((ages - 24) / 6.0) ** 2) + 0.3 * np.exp(-ages / 4.0)
    profile = np.stack([profile, profile], axis=-1)
    profile /= profile.sum()
    level = rng.normal(0.0, migration_sd, n_municipalities)
    births = np.zeros((n_municipalities, n_years))
    deaths = np.zeros((n_municipalities, n_years))
    for t in range(n_years - 1):
        current = population[:, t]
        m = mortality[t].T  # (age, sex)
        hazard = np.concatenate([(m[:-1] + m[1:]) / 2, m[-1:]], axis=0)
        survivors = current * np.exp(-hazard)
        aged = np.zeros_like(current)
        aged[:, 1:] = survivors[:, :-1]
        aged[:, -1] += survivors[:, -1]
        women = current[:, :, 0] @ fertility[t]
        born = rng.poisson(women)
        newborn = born[:, None] * np.array([1 / (1 + srb), srb / (1 + srb)]) * np.exp(-m[0] / 2)
        aged[:, 0] = newborn
        rate = level + rng.normal(0.0, 0.5, n_municipalities)
        flow = rate[:, None, None] / 100 * current.sum((1, 2))[:, None, None] * profile
        noise = rng.normal(0.0, 0.3, flow.shape) * np.sqrt(np.maximum(aged, 0) + 1) * 0.1
        nxt = np.maximum(np.round(aged + flow + noise), 0.0)
        population[:, t + 1] = nxt
        births[:, t] = born
        deaths[:, t] = np.round(current.sum((1, 2)) - survivors.sum((1, 2)) + born - newborn.sum(1))
    births[:, -1] = np.nan
    deaths[:, -1] = np.nan

    # Employment and commuting: residents work mostly at home, some in the first municipality.
    employed_residence = 0.5 * population.sum((2, 3))
    jobs_growth = np.cumprod(1 + rng.normal(0.01, 0.02, (n_municipalities, n_years)), axis=1)
    employed_workplace = employed_residence * jobs_growth / jobs_growth[:, :1]
    for array in (employed_residence, employed_workplace):
        array[:, -1] = np.nan
    employed_residence = np.round(employed_residence)
    employed_workplace = np.round(employed_workplace)
    if sparse_commuting is None:
        sparse_commuting = n_municipalities >= SPARSE_FROM
    commuting = _toy_commuting(
        0.5 * population.sum((2, 3)), codes, year_values, sparse=sparse_commuting
    )
    coords = {
        "municipality": codes,
        "year": year_values,
        "age": ages,
        "sex": list(SEXES),
    }
    panel = xr.Dataset(
        {
            "population": (
                ("municipality", "year", "age", "sex"),
                population,
                {"kind": "stock", "units": "persons", "derived": "no"},
            ),
            "births": (("municipality", "year"), births, _flow_attrs()),
            "deaths": (("municipality", "year"), deaths, _flow_attrs()),
            "employed_residence": (
                ("municipality", "year"),
                employed_residence,
                {"kind": "flow", "units": "persons", "derived": "no"},
            ),
            "employed_workplace": (
                ("municipality", "year"),
                employed_workplace,
                {"kind": "flow", "units": "persons", "derived": "no"},
            ),
            "mortality_rate": (
                ("age", "sex", "year"),
                mortality.transpose(2, 1, 0),
                {"kind": "rate", "units": "per person-year", "derived": "no"},
            ),
            "fertility_rate": (
                ("age", "year"),
                fertility.T,
                {"kind": "rate", "units": "per woman-year", "derived": "no"},
            ),
        },
        coords=coords,
    )
    panel["commuting"] = commuting
    panel = panel.assign_coords(
        name=("municipality", [f"Toy {c}" for c in codes]),
        county=("municipality", ["30"] * n_municipalities),
        region=("municipality", regions),
        region_name=("municipality", [f"Region {r}" for r in regions]),
        centrality=("municipality", np.linspace(950, 450, n_municipalities)),
    )
    net = residual_net_migration(
        panel["population"], panel["mortality_rate"], panel["births"], sex_ratio_at_birth=srb
    )
    panel["net_migration"] = net.transpose("municipality", "year", "age", "sex")
    panel["net_migration"].attrs.update({"kind": "flow", "units": "persons", "derived": "yes"})
    panel["net_migration_total"] = panel["net_migration"].sum(("age", "sex"), min_count=1)
    panel["net_migration_total"].attrs = {"kind": "flow", "units": "persons", "derived": "yes"}
    panel.attrs["sex_ratio_at_birth"] = srb
    return panel
