"""Relative job growth (RA) and commuting-weighted relative job growth (VRA).

Definitions follow the attractiveness model (Vareide, *Drivkrefter for flytting*, 2022;
sections "Relativ vekst i antall arbeidsplasser", "Pendlingslekkasje og nabovekst" and
table 2 of the source chapter, summarised in ``attractiveness-model.md``):

* job growth of municipality ``k`` in year ``t`` is the percentage change of the employed
  persons counted at their place of work in the 4th quarter of ``t`` against the 4th
  quarter of ``t - 1``;
* RA subtracts the national job growth of the same year (percentage points);
* VRA of a home municipality ``m`` is the commuting-share weighted sum of RA over every
  municipality its employed residents work in, its own municipality included.

All functions are pure functions of a panel (see :mod:`vekst.data.panel`) and return
labelled :class:`xarray.DataArray` objects with ``attrs["units"]``.

Conventions chosen here (and why)
---------------------------------
* National job growth (``national="workplace"``, the default) is the growth of the sum of
  ``employed_workplace`` over the municipalities observed in both years. With that choice
  the employment-weighted mean of RA is exactly zero in every year, so RA is a purely
  relative measure. ``national="residence"`` uses the sum of ``employed_residence``
  instead: every employed resident of Norway, including those whose workplace is the
  continental shelf, Svalbard or unknown, i.e. Norway's total employment. That is the
  national figure the published table 2 (Rælingen 2021) was computed with; it differs
  from the default by a few hundredths of a percentage point.
* Commuting shares (``denominator="commuting"``, the default) divide each home
  municipality's flows by the row total, so a row sums to one and every employed resident
  is attached to some RA. ``denominator="employed_residence"`` divides by all employed
  residents (the published table 2 convention); the rows then sum to slightly less than
  one, the remainder being residents who work on the shelf, on Svalbard or at an unknown
  place, whose RA is undefined and who therefore add nothing to VRA.
* Commuting year for job-growth year ``t``: the matrix of year ``t`` itself when it
  exists, otherwise the nearest available year (ties go to the earlier year, the one
  that was known at the time). ``commuting_year`` overrides this with one year for all
  job-growth years or with a ``{job_growth_year: commuting_year}`` mapping.
* A commuting matrix with NaN cells (a municipality absent that year; in the embedded
  data Rindal in 2019, missing from SSB's 2019 files) is skipped by the automatic choice,
  so job growth of 2019 is weighted with the 2018 matrix there. Asking for such a matrix
  explicitly raises :class:`CommutingCoverageError` naming the municipality and year.
* A destination whose RA is unknown (no employment in ``t`` or ``t - 1``, or 0 in
  ``t - 1``) is renormalised away when at most ``max_unknown_share`` (default 5 %) of the
  employed residents work there; otherwise VRA is NaN. :func:`vra_split` reports the
  share. Without this, the handful of Oslo residents who work in Rindal would blank
  the VRA of Oslo and some twenty other municipalities for 2019-2020.
* ``lag`` L at year t holds VRA of year ``t - L``; each VRA year uses its own commuting
  matrix, so a lagged value is identical to the unlagged value of the earlier year.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import xarray as xr

from vekst.features.commuting import (  # noqa: F401 - re-exported
    Denominator,
    OnIncomplete,
    ShareMatrix,
    _commuting,
    _employment,
    _share_matrix,
    _span,
    commuting_shares,
    commuting_year_map,
    complete_commuting_years,
)
from vekst.features.errors import (  # noqa: F401 - re-exported
    CommutingCoverageError,
    EmptyCommutingRowError,
    FeatureError,
    MissingCommutingError,
    MissingEmploymentError,
    describe_municipalities,
    years_with_data,
)

__all__ = [
    "CommutingCoverageError",
    "EmptyCommutingRowError",
    "FeatureError",
    "MissingCommutingError",
    "MissingEmploymentError",
    "commuting_shares",
    "commuting_year_map",
    "complete_commuting_years",
    "national_job_growth",
    "relative_job_growth",
    "vra",
    "vra_split",
]

National = Literal["workplace", "residence"]
#: Default largest share of employed residents working where RA is unknown (see vra()).
MAX_UNKNOWN_SHARE = 0.05


def _previous_year(da: xr.DataArray) -> xr.DataArray:
    """Value of year ``t - 1`` placed at year ``t`` (NaN where ``t - 1`` is not in the panel)."""
    years = np.asarray(da["year"].values)
    return da.reindex(year=years - 1).assign_coords(year=years)


def national_job_growth(panel: xr.Dataset, national: National = "workplace") -> xr.DataArray:
    """National job growth in percent, year ``t`` against ``t - 1``.

    Parameters
    ----------
    panel
        A panel with ``employed_workplace`` (``national="workplace"``) or
        ``employed_residence`` (``national="residence"``).
    national
        Which national total: the sum of ``employed_workplace`` over municipalities (the
        default; makes the employment-weighted RA exactly zero) or the sum of
        ``employed_residence`` (all employed residents of Norway, shelf/Svalbard/unknown
        workplaces included; the published convention). Only municipalities observed in
        both years enter either sum.

    Returns
    -------
    xarray.DataArray
        Dims ``(year,)``, percent; NaN where no municipality is observed in both years.

    Raises
    ------
    MissingEmploymentError
        If the panel lacks the employment variable.
    """
    if national not in ("workplace", "residence"):
        raise ValueError(f"national must be 'workplace' or 'residence', got {national!r}.")
    name = "employed_workplace" if national == "workplace" else "employed_residence"
    employed = _employment(panel, name)
    previous = _previous_year(employed)
    both = employed.notnull() & previous.notnull()
    now_total = employed.where(both).sum("municipality", min_count=1)
    before_total = previous.where(both).sum("municipality", min_count=1)
    growth = 100.0 * (now_total / before_total.where(before_total > 0) - 1.0)
    growth.name = "national_job_growth"
    growth.attrs = {
        "units": "percent",
        "long_name": "national job growth, 4th quarter t against 4th quarter t-1",
        "national": national,
        "source_variable": name,
    }
    return growth


def relative_job_growth(
    panel: xr.Dataset,
    years: Sequence[int] | None = None,
    national: National = "workplace",
) -> xr.DataArray:
    """Relative job growth RA: local job growth minus national job growth, in pp.

    ``RA[k, t] = 100 * (E[k, t] / E[k, t-1] - 1) - G[t]`` with ``E`` = employed persons
    by place of work (4th quarter) and ``G`` from :func:`national_job_growth`.

    Parameters
    ----------
    panel
        Panel with ``employed_workplace``.
    years
        Years to return. ``None`` returns every panel year, NaN where ``t`` or ``t - 1``
        lacks employment (e.g. the first employment year). Naming years makes a missing
        year an error instead.
    national
        National total, see :func:`national_job_growth`.

    Returns
    -------
    xarray.DataArray
        Dims ``(municipality, year)``, percentage points. NaN (never zero) where the
        municipality's employment is missing in ``t`` or ``t - 1`` or is 0 in ``t - 1``
        (growth from nothing is undefined).

    Raises
    ------
    MissingEmploymentError
        If ``employed_workplace`` is absent, or a requested year (or the year before it)
        has no employment data; the message lists the years that have data.
    """
    employed = _employment(panel, "employed_workplace")
    available = years_with_data(employed)
    if years is not None:
        for year in years:
            lacking = [y for y in (int(year) - 1, int(year)) if y not in available]
            if lacking:
                raise MissingEmploymentError(
                    f"relative job growth for {year} needs employed_workplace in "
                    f"{int(year) - 1} and {year}, but {lacking} has no data; employment is "
                    f"available for {_span(available)}, so job growth for "
                    f"{_span(available[1:]) if len(available) > 1 else 'no year'}."
                )
    previous = _previous_year(employed)
    local = 100.0 * (employed / previous.where(previous > 0) - 1.0)
    ra = local - national_job_growth(panel, national)
    ra = ra.transpose("municipality", "year")
    if years is not None:
        ra = ra.sel(year=[int(y) for y in years])
    ra.name = "relative_job_growth"
    ra.attrs = {
        "units": "percentage points",
        "long_name": "relative job growth (local minus national job growth, 4th quarter)",
        "national": national,
    }
    return ra


def _vra_parts(
    panel: xr.Dataset,
    commuting_year: int | Mapping[int, int] | None,
    national: National,
    denominator: Denominator,
    on_incomplete: OnIncomplete,
    max_unknown_share: float,
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray, dict[int, int]]:
    """Own part, neighbours' part and unknown-RA share of unlagged VRA, and the year map."""
    if not 0.0 <= max_unknown_share <= 1.0:
        raise ValueError(f"max_unknown_share must lie in [0, 1], got {max_unknown_share}.")
    ra = relative_job_growth(panel, national=national)
    codes = [str(c) for c in panel["municipality"].values]
    years = [int(y) for y in panel["year"].values]
    own = np.full((len(codes), len(years)), np.nan)
    neighbours = np.full_like(own, np.nan)
    unknown = np.full_like(own, np.nan)
    ra_years = years_with_data(ra)
    year_map = commuting_year_map(panel, ra_years, commuting_year) if ra_years else {}
    # One share matrix at a time: years run in order and years sharing a commuting year
    # are consecutive. The matrices are sparse (a few destinations per home), so the
    # sums below cost the number of flows, not units squared.
    shares_cache: dict[int, tuple[ShareMatrix, np.ndarray, np.ndarray]] = {}
    for t, cy in year_map.items():
        if cy not in shares_cache:
            shares_cache.clear()
            shares_cache[cy] = _share_matrix(panel, cy, codes, denominator, on_incomplete)
        matrix, own_share, work_index = shares_cache[cy]
        shares = matrix.shares
        ra_t = ra.sel(year=t).values
        r = ra_t[work_index]
        known = np.isfinite(r)
        # Stored shares are non-zero: a zero share is no exposure, so an unknown RA there
        # costs nothing; row sums over the stored entries are the sums over all columns.
        unknown_share = shares @ (~known).astype(float)
        row_total = shares @ np.ones(len(work_index))
        known_total = row_total - unknown_share
        with np.errstate(divide="ignore", invalid="ignore"):
            # Spread the unknown destinations' weight over the known ones (renormalise).
            scale = np.where(known_total > 0, row_total / known_total, np.nan)
        usable = unknown_share <= max_unknown_share
        own_known = np.isfinite(ra_t) | (own_share == 0)
        own_part = np.where(own_share == 0, 0.0, own_share * np.where(own_known, ra_t, 0.0))
        j = years.index(t)
        total = (shares @ np.where(known, r, 0.0)) * scale
        own[:, j] = np.where(usable, own_part * scale, np.nan)
        neighbours[:, j] = np.where(usable, total - own_part * scale, np.nan)
        # Rows of unknown shares: no VRA; their unknown share is unknown as soon as any
        # destination's RA is (as for a NaN row of a dense share matrix).
        unknown[:, j] = np.where(matrix.nan_rows, 0.0 if known.all() else np.nan, unknown_share)
        own[matrix.nan_rows, j] = np.nan
        neighbours[matrix.nan_rows, j] = np.nan
    coords = {"municipality": panel["municipality"], "year": panel["year"]}
    dims = ("municipality", "year")
    return (
        xr.DataArray(own, dims=dims, coords=coords),
        xr.DataArray(neighbours, dims=dims, coords=coords),
        xr.DataArray(unknown, dims=dims, coords=coords),
        year_map,
    )


def _lagged(series: xr.DataArray, lags: Sequence[int]) -> xr.DataArray:
    years = np.asarray(series["year"].values)
    layers = [series.reindex(year=years - int(lag)).assign_coords(year=years) for lag in lags]
    out = xr.concat(layers, dim=xr.DataArray(list(lags), dims="lag", name="lag"))
    return out.transpose("lag", "municipality", "year")


def _vra_attrs(year_map: dict[int, int], **extra: str) -> dict:
    attrs = {
        "units": "percentage points",
        "lag_convention": "lag L at year t holds the value of year t-L",
        "job_growth_years": np.array(list(year_map), dtype=int),
        "commuting_years": np.array(list(year_map.values()), dtype=int),
    }
    attrs.update(extra)
    return attrs


def vra(
    panel: xr.Dataset,
    commuting_year: int | Mapping[int, int] | None = None,
    lags: Sequence[int] = (0, 1, 2),
    national: National = "workplace",
    denominator: Denominator = "commuting",
    on_incomplete: OnIncomplete = "raise",
    max_unknown_share: float = MAX_UNKNOWN_SHARE,
) -> xr.DataArray:
    """Commuting-weighted relative job growth, ``VRA[m, t] = sum_k share[m, k] * RA[k, t]``.

    Parameters
    ----------
    panel
        Panel with ``employed_workplace`` and ``commuting``.
    commuting_year
        Which commuting matrix weights which job-growth year; see
        :func:`commuting_year_map` (default: same year, else nearest available).
    lags
        Lags to return; lag ``L`` at year ``t`` holds VRA of year ``t - L``.
    national
        National job growth definition, see :func:`national_job_growth`.
    denominator
        Commuting-share denominator, see :func:`commuting_shares`.
    on_incomplete
        Missing or empty commuting rows: ``"raise"`` or ``"nan"`` (NaN VRA for them).
    max_unknown_share
        Largest share of a municipality's employed residents that may work in
        municipalities whose RA is unknown that year (e.g. Rindal 2019-2020 in the
        embedded data, whose 2019 employment is missing). Up to this share, VRA is the
        share-weighted RA over the known destinations, renormalised to their total share
        (the unknown destinations are taken to grow like the known ones); above it VRA is
        NaN. Default 0.05. ``0`` makes any exposure to an unknown RA give NaN.

    Returns
    -------
    xarray.DataArray
        Dims ``(lag, municipality, year)``, percentage points. NaN where RA is missing for
        the year or the unknown share exceeds ``max_unknown_share`` (a share of 0 never
        propagates NaN); never a silent zero. ``attrs["job_growth_years"]`` and
        ``attrs["commuting_years"]`` record the matrix used for each year;
        :func:`vra_split` returns the unknown share itself.

    Raises
    ------
    MissingEmploymentError, MissingCommutingError, CommutingCoverageError,
    EmptyCommutingRowError
        See :func:`relative_job_growth` and :func:`commuting_shares`.
    """
    own, neighbours, _, year_map = _vra_parts(
        panel, commuting_year, national, denominator, on_incomplete, max_unknown_share
    )
    out = _lagged(own + neighbours, lags)
    out.name = "vra"
    out.attrs = _vra_attrs(
        year_map,
        long_name="weighted relative job growth (VRA)",
        national=national,
        denominator=denominator,
    )
    return out


def vra_split(
    panel: xr.Dataset,
    commuting_year: int | Mapping[int, int] | None = None,
    lags: Sequence[int] = (0, 1, 2),
    national: National = "workplace",
    denominator: Denominator = "commuting",
    on_incomplete: OnIncomplete = "raise",
    max_unknown_share: float = MAX_UNKNOWN_SHARE,
) -> xr.Dataset:
    """VRA split into the own-municipality part and the neighbours' part.

    ``own[m, t] = share[m, m] * RA[m, t]`` and ``neighbours = VRA - own``, so
    ``own + neighbours`` equals :func:`vra` with the same arguments. Used by the growth
    decomposition ("own jobs" and "neighbours' jobs").

    Parameters
    ----------
    panel, commuting_year, lags, national, denominator, on_incomplete, max_unknown_share
        As for :func:`vra`.

    Returns
    -------
    xarray.Dataset
        Variables ``own`` and ``neighbours`` (percentage points) and ``unknown_share``
        (fraction of employed residents working where RA is unknown), dims ``(lag,
        municipality, year)``. Where the unknown share was renormalised away, both parts
        are scaled by the same factor, so they still add up to VRA.
    """
    own, neighbours, unknown, year_map = _vra_parts(
        panel, commuting_year, national, denominator, on_incomplete, max_unknown_share
    )
    ds = xr.Dataset(
        {
            "own": _lagged(own, lags),
            "neighbours": _lagged(neighbours, lags),
            "unknown_share": _lagged(unknown, lags),
        }
    )
    ds["unknown_share"].attrs = {
        "units": "1",
        "long_name": "share of employed residents working where RA is unknown "
        "(renormalised away up to max_unknown_share, else VRA is NaN)",
        "max_unknown_share": float(max_unknown_share),
    }
    ds["own"].attrs = _vra_attrs(year_map, long_name="own municipality's part of VRA")
    ds["neighbours"].attrs = _vra_attrs(
        year_map, long_name="other municipalities' part of VRA (commuting destinations)"
    )
    ds.attrs = {"national": national, "denominator": denominator}
    return ds
