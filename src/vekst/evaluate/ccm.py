"""``ccm<k>``: the planners' spreadsheet -- a deterministic cohort-component projection.

Constant rates and each municipality's average net migration by age and sex over the last
``k`` calendar years before the origin (``ccm5`` by default); what many municipal
planning tools do. Everything comes from the panel truncated at the origin:

* **mortality**: the national central death rates of the last calendar year before the
  origin, held constant; survival in the convention of :mod:`vekst.data.components`
  (:func:`~vekst.data.components.survival_probability`,
  :func:`~vekst.data.components.newborn_survival`);
* **fertility**: the national ASFR of the last year before the origin, held constant, times
  the municipality's fertility ratio (births / expected births at national rates) over the
  same ``k`` years; births from the mean of the 1 January stocks of women of ``t`` and
  ``t + 1`` at each age, as :func:`vekst.features.expected_births` counts them; boys and
  girls by the sex ratio at birth;
* **migration**: the municipality's mean net migration (persons) by age and sex over the
  ``k`` years, added to each cell every year (ages at the end of the year, as the
  residual method labels them). A cell that would go negative is set to zero (the
  spreadsheet rule; it is the only departure from exact accounting).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from vekst.data.panel import SEXES
from vekst.evaluate.truncation import BacktestError

__all__ = ["ccm_projection"]



def _last_rates(panel: xr.Dataset, name: str, origin: int) -> tuple[xr.DataArray, int]:
    """The rates of the last calendar year before ``origin`` that has any."""
    if name not in panel:
        raise BacktestError(
            f"the ccm baseline needs national '{name}' in the panel; add the national rates "
            "or drop 'ccm' from the methods."
        )
    rates = panel[name].sel(year=panel["year"] < origin)
    has = [int(y) for y in rates["year"].values if bool(rates.sel(year=y).notnull().any())]
    if not has:
        raise BacktestError(
            f"'{name}' has no value in a year before the origin {origin}; the ccm baseline "
            "holds the last observed rates constant and needs at least one year."
        )
    # Ages the source never tabulates (fertility below 12, say) carry no events.
    return rates.sel(year=has[-1]).fillna(0.0), has[-1]


def _fertility_ratio(panel: xr.Dataset, years: list[int]) -> np.ndarray:
    """Observed over expected births per municipality in ``years`` (1 where unknown)."""
    from vekst.features import expected_births

    if "births" not in panel:
        return np.ones(panel.sizes["municipality"])
    expected = expected_births(panel).sel(year=years).sum("year", skipna=True)
    observed = panel["births"].sel(year=years).sum("year", skipna=True)
    ratio = (observed / expected).transpose("municipality").values.astype(np.float64)
    return np.where(np.isfinite(ratio) & (ratio > 0), ratio, 1.0)


def ccm_projection(panel: xr.Dataset, origin: int, end_year: int, years: int = 5) -> xr.DataArray:
    """Project the 1 January ``origin`` stock to ``end_year`` with constant rates.

    Parameters
    ----------
    panel
        The panel truncated at the origin (:func:`vekst.evaluate.truncate_panel`): its
        ``population`` in the origin year is the jump-off, its ``net_migration``
        (municipality, year, age, sex) the migration history.
    origin
        Year of the jump-off stock.
    end_year
        Last 1 January stock projected.
    years
        Window of the migration averages and of the fertility ratio.

    Returns
    -------
    xarray.DataArray
        ``population`` (year, municipality, age, sex) for ``origin .. end_year`` (float64);
        ``attrs`` record the rate years and the migration window.

    Raises
    ------
    BacktestError
        If the panel lacks rates, net migration by age and sex, or any year in the window.
    """
    from vekst.data.components import newborn_survival, survival_probability
    from vekst.projection.fertility import sex_ratio_at_birth

    if years < 1:
        raise BacktestError(f"the ccm window must be at least one year; got {years}.")
    if "net_migration" not in panel or "age" not in panel["net_migration"].dims:
        raise BacktestError(
            "the ccm baseline needs 'net_migration' by age and sex in the panel (the residual "
            "method gives it: vekst.data.components.add_derived_components)."
        )
    municipalities = panel["municipality"].values
    ages = panel["age"].values
    order = ("municipality", "sex", "age")
    migration = panel["net_migration"].sel(
        year=(panel["year"] >= origin - years) & (panel["year"] < origin)
    )
    window = [
        int(y) for y in migration["year"].values if bool(migration.sel(year=y).notnull().any())
    ]
    if not window:
        raise BacktestError(
            f"no net migration by age and sex in {origin - years}-{origin - 1}; the ccm "
            f"baseline needs at least one calendar year before the origin {origin}."
        )
    mean_migration = (
        migration.sel(year=window, sex=list(SEXES))
        .mean("year", skipna=True)
        .fillna(0.0)
        .transpose(*order)
        .values
    )
    death_rate, death_year = _last_rates(panel, "mortality_rate", origin)
    survival = survival_probability(death_rate).sel(sex=list(SEXES)).transpose("sex", "age").values
    newborn = newborn_survival(death_rate).sel(sex=list(SEXES)).values
    asfr, fertility_year = _last_rates(panel, "fertility_rate", origin)
    asfr = asfr.reindex(age=ages, fill_value=0.0).values
    ratio = _fertility_ratio(panel, window)
    srb, _ = sex_ratio_at_birth(panel, before_year=origin)
    sex_share = np.array([1.0 / (1.0 + srb), srb / (1.0 + srb)])
    female = SEXES.index("female")

    state = panel["population"].sel(year=origin, sex=list(SEXES)).transpose(*order)
    state = state.values.astype(np.float64)
    path = [state]
    for _ in range(origin, end_year):
        alive = state * survival[None]
        survivors = np.zeros_like(alive)
        survivors[..., 1:] = alive[..., :-1]
        survivors[..., -1] += alive[..., -1]  # the open age keeps its own survivors
        following = survivors + mean_migration
        women = 0.5 * (state[:, female] + following[:, female])
        births = ratio * (women @ asfr)
        following[..., 0] = (
            births[:, None] * sex_share[None] * newborn[None] + mean_migration[..., 0]
        )
        state = np.clip(following, 0.0, None)
        path.append(state)
    out = xr.DataArray(
        np.stack(path),
        dims=("year", *order),
        coords={
            "year": np.arange(origin, end_year + 1),
            "municipality": municipalities,
            "sex": list(SEXES),
            "age": ages,
        },
        name="population",
    )
    out.attrs = {
        "method": f"ccm{years}",
        "migration_years": window,
        "mortality_year": death_year,
        "fertility_year": fertility_year,
        "sex_ratio_at_birth": float(srb),
    }
    return out.transpose("year", "municipality", "age", "sex")
