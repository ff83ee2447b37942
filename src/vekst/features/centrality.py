"""Centrality: SSB's centrality index as a model covariate.

The attractiveness model uses SSB's centrality index (0-1000; 293-1000 across the panel's
municipalities) divided by 1000 with the mean subtracted; regions take the
population-weighted mean of their municipalities (source chapter, section "Nettoflytting
og sentralitet"). The index is the 2017-based one, constant in time.

Centre
------
The default centre is the simple (unweighted) mean over the panel's municipalities: in the
migration regression every municipality (or region) is one unit, so centring on the
unit mean makes the intercept the expected net migration of an average unit, and the
centre does not move when a large city grows. ``center="population"`` centres on the
population-weighted mean (the centrality of the average resident) in a given year, and
a float centres on a fixed value, e.g. the centre stored with a fitted model so that a
projection uses exactly the same covariate. Centring shifts only the intercept, never
the slope. The value subtracted is stored in ``attrs["center"]``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr

from vekst.features.jobs import FeatureError, describe_municipalities

__all__ = ["MissingCentralityError", "centrality", "region_centrality"]

INDEX_SCALE = 1000.0


class MissingCentralityError(FeatureError):
    """The panel lacks the centrality coordinate or has gaps in it."""


def _raw_index(panel: xr.Dataset) -> xr.DataArray:
    if "centrality" not in panel.coords and "centrality" not in panel.data_vars:
        raise MissingCentralityError(
            "the panel has no 'centrality' coordinate on 'municipality' (SSB centrality "
            "index, 0-1000). Add it with panel.assign_coords(centrality=('municipality', "
            "[...])) from SSB's classification of centrality."
        )
    raw = panel["centrality"].astype(float)
    if raw.dims != ("municipality",):
        raise MissingCentralityError(
            f"'centrality' must have dims ('municipality',), got {raw.dims}."
        )
    missing = raw.isnull().values
    if missing.any():
        codes = panel["municipality"].values[missing]
        raise MissingCentralityError(
            f"centrality index missing for municipality {describe_municipalities(panel, codes)}."
            " Every municipality needs a value; successor codes carry their predecessor's "
            "index in SSB's classification."
        )
    # Drop the coordinate itself so the result does not carry two copies of the index.
    return raw.drop_vars("centrality") if "centrality" in raw.coords else raw


def _population_total(panel: xr.Dataset, year: int) -> xr.DataArray:
    year = int(year)
    years = [int(y) for y in panel["year"].values]
    if year not in years:
        raise FeatureError(
            f"population weights for {year} requested, but the panel covers {years[0]}-{years[-1]}."
        )
    return panel["population"].sel(year=year).sum(("age", "sex"))


def centrality(
    panel: xr.Dataset,
    center: Literal["mean", "population"] | float = "mean",
    year: int | None = None,
) -> xr.DataArray:
    """SSB centrality index / 1000, centred.

    Parameters
    ----------
    panel
        Panel with a ``centrality`` coordinate on ``municipality`` (0-1000).
    center
        ``"mean"`` (default): simple mean over municipalities; ``"population"``:
        population-weighted mean in ``year``; a float: that value (on the /1000 scale).
    year
        Population year for ``center="population"`` (default: the first panel year).

    Returns
    -------
    xarray.DataArray
        Dims ``(municipality,)``, index/1000 minus ``attrs["center"]``. Constant in time:
        the 2017-based SSB index is the only one available.

    Raises
    ------
    MissingCentralityError
        If the coordinate is missing or has NaN values (names the municipalities).
    """
    scaled = _raw_index(panel) / INDEX_SCALE
    if isinstance(center, str):
        if center == "mean":
            value = float(scaled.mean())
            how = "simple mean over municipalities"
        elif center == "population":
            year = int(panel["year"].values[0]) if year is None else int(year)
            weights = _population_total(panel, year)
            value = float((scaled * weights).sum() / weights.sum())
            how = f"population-weighted mean over municipalities, population 1 Jan {year}"
        else:
            raise ValueError(f"center must be 'mean', 'population' or a number, got {center!r}.")
    else:
        value = float(center)
        how = "user-supplied value"
    out = scaled - value
    out.name = "centrality"
    out.attrs = {
        "units": "SSB centrality index / 1000, centred",
        "long_name": "centrality (SSB index/1000 minus centre)",
        "center": value,
        "center_method": how,
    }
    return out


def region_centrality(
    panel: xr.Dataset,
    year: int,
    center: Literal["mean", "population"] | float = "mean",
) -> xr.DataArray:
    """Population-weighted mean centrality of each region (BA-region).

    Parameters
    ----------
    panel
        Panel with ``centrality`` and ``region`` coordinates on ``municipality``.
    year
        Year whose 1 January population weights the municipalities.
    center
        Centre of the municipal centrality (see :func:`centrality`); the same value is
        subtracted so region and municipality values share one scale.

    Returns
    -------
    xarray.DataArray
        Dims ``(region,)`` (with ``region_name`` when the panel has it), index/1000 minus
        ``attrs["center"]``.
    """
    if "region" not in panel.coords:
        raise MissingCentralityError(
            "the panel has no 'region' coordinate on 'municipality'; region centrality "
            "needs the municipality -> region (BA-region) map."
        )
    muni = centrality(panel, center=center, year=year)
    weights = _population_total(panel, year)
    region = panel["region"].reset_coords(drop=True).astype(str)
    weighted = (muni * weights).groupby(region).sum()
    total = weights.groupby(region).sum()
    out = weighted / total
    if "region_name" in panel.coords:
        names = panel["region_name"].reset_coords(drop=True).astype(str).groupby(region).first()
        out = out.assign_coords(region_name=("region", np.asarray(names.values)))
    out.name = "region_centrality"
    out.attrs = dict(muni.attrs)
    out.attrs["long_name"] = f"population-weighted region centrality, population 1 Jan {year}"
    return out
