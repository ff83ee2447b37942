"""Housing completions as a covariate: completed dwellings per 1,000 inhabitants.

``housing_L[m, t]`` is the number of dwellings completed in municipality *m* in calendar
year ``t - L`` per 1,000 inhabitants on 1 January of that year, minus one constant (the
mean over every observed municipality-year, stored in ``attrs["center"]``) so that the
term does not shift the level of the places that have data. It is NaN where completions
are not known, and the migration model switches the term off there, as it does for VRA
in years without employment data.

What the coefficient means
--------------------------
Dwellings are built where builders expect buyers: completions follow expected demand as
much as they create it. The fitted coefficient is therefore an *association* of net
migration with completions conditional on the other drivers (job growth, centrality,
demographic supply, the municipality's attractiveness and the year effect), not the
causal effect of one more dwelling. A housing plan run through it says how migration
has moved with completions in the past, other drivers held fixed.
"""

from __future__ import annotations

import re

import numpy as np
import xarray as xr

from vekst.features.jobs import FeatureError

__all__ = ["HOUSING_PATTERN", "MissingHousingError", "housing_lag", "housing_rate"]

#: Covariate names ``housing_<lag>``.
HOUSING_PATTERN = re.compile(r"^housing_(?P<lag>\d+)$")
PER = 1000.0


class MissingHousingError(FeatureError):
    """The panel has no completed-dwellings variable."""


def housing_lag(name: str) -> int | None:
    """The lag of a ``housing_<lag>`` covariate name, or ``None`` for another name."""
    match = HOUSING_PATTERN.match(name)
    return int(match["lag"]) if match else None


def housing_rate(
    panel: xr.Dataset, lags: list[int] | tuple[int, ...] = (0,), center: float | None = None
) -> xr.DataArray:
    """Completed dwellings per 1,000 inhabitants, lagged and centred.

    Parameters
    ----------
    panel
        Panel with ``dwellings_completed`` (municipality, year; NaN where unknown) and
        ``population``. The default panel carries the shipped Telemark table
        (:func:`vekst.data.housing.attach_completions`); ``vekst fetch`` fills it for every
        municipality from SSB 05940.
    lags
        Lags in years.
    center
        Constant to subtract; default the mean of the unlagged rate over the observed
        municipality-years (a projection passes the fit's value).

    Returns
    -------
    xarray.DataArray
        Dims ``(lag, municipality, year)``; NaN where completions (or the lagged year) are
        missing. ``attrs["center"]`` holds the constant subtracted.

    Raises
    ------
    MissingHousingError
        If the panel has no ``dwellings_completed``.
    """
    if "dwellings_completed" not in panel:
        raise MissingHousingError(
            "the panel has no 'dwellings_completed' (completed dwellings, SSB 05940); add it "
            "with vekst.data.housing.attach_completions(panel) or fetch it with `vekst "
            "fetch`, or drop the housing_<lag> covariates from the spec."
        )
    population = panel["population"].sum(("age", "sex"))
    rate = PER * panel["dwellings_completed"] / population.where(population > 0)
    rate = rate.transpose("municipality", "year")
    if center is None:
        values = rate.values[np.isfinite(rate.values)]
        center = float(values.mean()) if values.size else 0.0
    layers = [(rate - center).shift(year=lag) for lag in lags]
    out = xr.concat(layers, dim="lag").assign_coords(lag=list(lags))
    out.name = "housing"
    out.attrs = {
        "units": "completed dwellings per 1,000 inhabitants, centred",
        "center": float(center),
    }
    return out
