r"""Where a band comes from: the projection's predictive variance split by source.

Method (one source held at a time, common random numbers). With all sources random, draw
*d* of an output is :math:`Y_d` and its variance over draws is :math:`V`. Holding source
*k* at its mean while every other source keeps the same random numbers (the same seed)
gives :math:`Y_{-k,d}`. Source *k*'s contribution is the variance over draws of what
changes when *k* is known, :math:`C_k = \mathrm{Var}_d(Y_d - Y_{-k,d})`. For an output
that adds its sources' parts this is exactly the variance of *k*'s part: the other sources
cancel draw by draw, so no sampling noise of their covariance with *k* enters (the plain
difference of variances :math:`V - V_{-k}` carries it, and with 100 draws it was as large
as the fertility and mortality parts of the national band, and negative). It is the
total-effect attribution of variance-based sensitivity analysis, with *k* fixed at its mean
rather than resampled.

Assumptions and what to read into the numbers:

* The sources are independent a priori (they are drawn independently in the projection;
  the posterior correlation between parameters stays inside ``parameters``).
* Shares are :math:`C_k / \sum_j C_j`. Where sources interact (the variance of a product,
  e.g. a loading times a national shock) the :math:`C_k` do not add up to :math:`V`;
  ``interaction`` reports :math:`V - \sum_k C_k` so that nothing is hidden. A share is
  "of the band attributable to sources one at a time".
* Scenario inputs (job growth, a national net-migration path, a TFR target) are fixed
  numbers in a scenario, so they add no variance; compare scenarios for their effect.
* Every figure is estimated from the draws projected: with 100 draws a variance has a
  relative standard error of about 14 %.

The sources are defined in :mod:`vekst.projection.sources`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from vekst.projection.sources import SOURCES, check_sources

__all__ = [
    "SOURCES",
    "dominant_sources",
    "shown_years",
    "uncertainty_by_source",
    "uncertainty_table",
]

#: Outputs attributed: municipal totals and planners' age groups.
_OUTPUTS = {"total": "population_total", "age_group": "population_age_group"}


def uncertainty_by_source(
    panel: xr.Dataset,
    draws: xr.Dataset,
    *,
    sources: Sequence[str] = SOURCES,
    fixed: Sequence[str] = (),
    n_draws: int | None = 200,
    seed: int = 0,
    **options,
) -> xr.Dataset:
    r"""Split the predictive variance of every municipality, year and output by source.

    Parameters
    ----------
    panel, draws
        As for :func:`vekst.projection.project` (draws in the projection contract, e.g.
        :func:`vekst.fit.projection_draws`).
    sources
        Sources to attribute (default all of :data:`SOURCES`).
    fixed
        Sources held at their mean in every run, the full one included (what-if: the
        band if these were known); their contributions are zero.
    n_draws
        Draws per projection (one full run plus one per source, same seed).
    seed
        Seed shared by every run: the common random numbers.
    **options
        Passed to :func:`vekst.projection.project` (``scenario``, ``end_year``,
        ``base_year`` ...). ``detail`` is set to age groups.

    Returns
    -------
    xarray.Dataset
        For output ``total`` (``year, municipality``) and ``age_group`` (``year,
        municipality, age_group``): ``variance_<output>`` (persons²), ``contribution_<output>``
        (``source, ...``: :math:`\mathrm{Var}(Y - Y_{-k})`), ``share_<output>`` (``source,
        ...``: contributions normalised to 1) and ``interaction_<output>``; the same for the
        national total (``variance_national`` ...). Attrs: method, seed, draws.
    """
    from vekst.projection import project

    held_always = check_sources(fixed)
    chosen = list(sources)
    check_sources(chosen)
    options = {**options, "detail": "age_groups", "record_components": False}
    full = _outputs(
        project(panel, draws, n_draws=n_draws, seed=seed, held_sources=held_always, **options)
    )
    variance = {name: value.var("draw") for name, value in full.items()}
    parts: dict[str, list[xr.DataArray]] = {name: [] for name in full}
    for source in chosen:
        held = _outputs(
            project(
                panel, draws, n_draws=n_draws, seed=seed,
                held_sources=held_always | {source}, **options,
            )
        )
        for name, value in held.items():
            # Per draw, the other sources' random numbers are the same in both runs and
            # cancel: what is left is this source's part of the draw.
            parts[name].append((full[name] - value).var("draw"))
    result = xr.Dataset()
    source_index = xr.DataArray(np.array(chosen, dtype=str), dims="source", name="source")
    for name, total in variance.items():
        contribution = xr.concat(parts[name], dim=source_index)
        denominator = contribution.sum("source")
        share = (contribution / denominator.where(denominator > 0)).fillna(0.0)
        result[f"variance_{name}"] = total
        result[f"contribution_{name}"] = contribution
        result[f"share_{name}"] = share
        result[f"interaction_{name}"] = total - contribution.sum("source")
    result.attrs.update(
        method="one source held at its mean at a time, common random numbers "
        "(see vekst.uncertainty)",
        fixed=", ".join(sorted(held_always)),
        seed=int(seed),
        n_draws=int(full["total"].sizes["draw"]),
    )
    return result


def _outputs(projection: xr.Dataset) -> dict[str, xr.DataArray]:
    """Per-draw outputs attributed, float64, without the flows' empty last year."""
    out = {
        name: projection[variable].astype(np.float64)
        for name, variable in _OUTPUTS.items()
        if variable in projection
    }
    out["national"] = out["total"].sum("municipality")
    return out


def uncertainty_table(attribution: xr.Dataset, years: Sequence[int] | None = None) -> pd.DataFrame:
    """Long table of the attribution: one row per municipality, year, output and source.

    Parameters
    ----------
    attribution
        From :func:`uncertainty_by_source`.
    years
        Years kept (default all).

    Returns
    -------
    pandas.DataFrame
        Columns ``municipality, year, output, sd, source, share, contribution_sd`` where
        ``sd`` is the full predictive sd (persons) and ``contribution_sd`` is
        ``sign(C) sqrt(|C|)`` (persons), plus one row per cell with source
        ``interaction``; national rows have municipality ``"national"``. The base year
        (no variance) is left out.
    """
    frames = []
    for output in ("total", "age_group", "national"):
        if f"share_{output}" not in attribution:
            continue
        share = attribution[f"share_{output}"]
        contribution = attribution[f"contribution_{output}"]
        variance = attribution[f"variance_{output}"]
        interaction = attribution[f"interaction_{output}"].expand_dims(
            source=np.array(["interaction"])
        )
        if years is not None:
            share, contribution, variance, interaction = (
                a.sel(year=list(years)) for a in (share, contribution, variance, interaction)
            )
        table = xr.Dataset(
            {
                "share": xr.concat([share, interaction * np.nan], dim="source"),
                "contribution_sd": _signed_sd(xr.concat([contribution, interaction], "source")),
                "sd": np.sqrt(variance),
            }
        ).to_dataframe().reset_index()
        if "municipality" not in table:
            table["municipality"] = "national"
        table["output"] = table.pop("age_group") if "age_group" in table else "total"
        frames.append(table)
    columns = ["municipality", "year", "output", "sd", "source", "share", "contribution_sd"]
    table = pd.concat(frames, ignore_index=True)[columns]
    base = int(attribution["year"].min())  # the base year has no variance
    return table[table["year"] > base].reset_index(drop=True)


def shown_years(base: int, end: int) -> list[int]:
    """Years a planner reads: 1, 4 and 10 years ahead, every fifth year and the last."""
    years = {base + 1, base + 4, base + 10, end} | set(range(base - base % 5 + 5, end, 5))
    return sorted(y for y in years if base < y <= end)


def _signed_sd(variance: xr.DataArray) -> xr.DataArray:
    return np.sign(variance) * np.sqrt(np.abs(variance))


def dominant_sources(attribution: xr.Dataset, year: int) -> pd.DataFrame:
    """Municipalities ranked by the source that makes most of their band in ``year``.

    Returns
    -------
    pandas.DataFrame
        One row per municipality: ``dominant`` source, its ``share``, the full ``sd`` and
        the shares of every source; sorted by dominant source, then share (descending).
    """
    share = attribution["share_total"].sel(year=year)
    table = share.transpose("municipality", "source").to_pandas()
    out = pd.DataFrame(
        {
            "dominant": table.idxmax(axis=1),
            "share": table.max(axis=1),
            "sd": np.sqrt(attribution["variance_total"].sel(year=year).to_pandas()),
        }
    ).join(table)
    return out.sort_values(["dominant", "share"], ascending=[True, False])
