"""Stock accounting of a Simulated Norway panel: the migration age schedule, whole-number
rounding of stocks, spreading net migrants over age and sex, and the flows derived from
the finished stocks (net migration as the cohort residual, deaths implied by national
survival)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from vekst.data.components import net_migration_total as _net_migration_total
from vekst.data.components import residual_net_migration, survival_probability, survive

__all__ = ["migration_age_schedule"]

SOURCE = "simulated (vekst.simulate)"


def migration_age_schedule(ages: Sequence[int] | np.ndarray) -> np.ndarray:
    """Relative propensity to migrate by age at the end of the year (Rogers-Castro form).

    A childhood component falling with age (children move with their parents), a
    labour-force peak at about age 24 and a constant.

    Parameters
    ----------
    ages
        Ages in completed years.

    Returns
    -------
    numpy.ndarray
        Positive weights, same shape as ``ages`` (not normalised).
    """
    x = np.asarray(ages, dtype=float)
    child = 0.02 * np.exp(-0.08 * x)
    labour = 0.08 * np.exp(-0.12 * (x - 21.0) - np.exp(-0.45 * (x - 21.0)))
    return child + labour + 0.004


def round_rows(values: np.ndarray) -> np.ndarray:
    """Whole numbers per row (first axis) with the row total rounded once.

    Largest-remainder rule: floor every cell, then add one to the cells with the largest
    fractional parts until the row reaches ``round(row sum)``. Negative input (float dust
    after capping) is treated as zero.
    """
    shape = values.shape
    flat = np.maximum(values.reshape(shape[0], -1), 0.0)
    floor = np.floor(flat)
    extra = (np.rint(flat.sum(1)) - floor.sum(1)).astype(int)
    order = np.argsort(-(flat - floor), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(flat.shape[1]), flat.shape), 1)
    return (floor + (ranks < extra[:, None])).reshape(shape)


def allocate_migrants(
    total: np.ndarray,
    survivors: np.ndarray,
    infants: np.ndarray,
    schedule: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Spread net migrants (municipality) over (age, sex); age 0 uses ``infants``.

    Returns the allocation (municipality, age, sex) and the part of each total that could
    not be placed because a municipality would have lost more people than it had.
    """
    stock = survivors.copy()
    stock[:, 0, :] = infants
    national = stock.sum(0)
    inflow = schedule[:, None] * national
    inflow = inflow / max(inflow.sum(), 1e-300)
    outflow = schedule[None, :, None] * stock
    out_total = outflow.sum((1, 2), keepdims=True)
    outflow = np.divide(outflow, out_total, out=np.zeros_like(outflow), where=out_total > 0)
    positive = total[:, None, None] > 0
    migrants = np.where(positive, total[:, None, None] * inflow, total[:, None, None] * outflow)
    # Out-migration is capped at the survivors of each cell; the excess leaves from the
    # cells that still have people, in proportion to what remains there.
    room = survivors.copy()
    room[:, 0, :] = np.inf
    excess = np.maximum(-migrants - room, 0.0).sum((1, 2))
    migrants = np.maximum(migrants, -room)
    remaining = np.where(np.isfinite(room), room + migrants, 0.0)
    left = remaining.sum((1, 2))
    share = np.divide(excess, left, out=np.zeros_like(excess), where=left > 0)
    placed = np.minimum(share, 1.0)
    migrants = migrants - placed[:, None, None] * remaining
    capped = excess - placed * left
    return migrants, capped


def finish(panel: xr.Dataset, deaths: np.ndarray) -> xr.Dataset:
    panel["deaths"] = xr.Variable(
        ("municipality", "year"),
        deaths,
        attrs={
            "kind": "flow",
            "units": "persons",
            "derived": "no",
            "description": "simulated deaths in the calendar year (expected deaths x "
            "exp(mort_dev), negative binomial); not subtracted from the stocks, which "
            "follow national survival",
            "source": SOURCE,
        },
    )
    net = residual_net_migration(
        panel["population"],
        panel["mortality_rate"],
        panel["births"],
        sex_ratio_at_birth=panel["sex_ratio_at_birth"],
    )
    net.attrs = {
        "kind": "flow",
        "units": "persons",
        "derived": "no",
        "description": "simulated net migration (in minus out) during the calendar year by "
        "age on 1 January of the next year; equals the cohort residual of the stocks exactly",
        "source": SOURCE,
    }
    panel["net_migration"] = net
    total = _net_migration_total(net)
    total.attrs = {**net.attrs, "description": "simulated net migration summed over age, sex"}
    panel["net_migration_total"] = total
    panel["population"] = panel["population"].astype(np.int64)
    return panel


def implied_deaths(panel: xr.Dataset, flow_years: list[int]) -> np.ndarray:
    """Deaths implied by national survival in the stock accounting (municipality, year)."""
    from vekst.data.components import newborn_survival

    stock = panel["population"].sel(year=flow_years).astype(float)
    survival = survival_probability(panel["mortality_rate"].sel(year=flow_years))
    survivors = survive(stock, survival).sum(("age", "sex"))
    births = panel["births"].sel(year=flow_years)
    srb = panel["sex_ratio_at_birth"].sel(year=flow_years)
    p0 = newborn_survival(panel["mortality_rate"].sel(year=flow_years))
    infant_deaths = births * (
        (1 - p0.sel(sex="female")) / (1 + srb) + (1 - p0.sel(sex="male")) * srb / (1 + srb)
    )
    implied = stock.sum(("age", "sex")) - survivors + infant_deaths
    return implied.transpose("municipality", "year").values
