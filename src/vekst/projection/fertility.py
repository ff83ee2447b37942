"""National fertility for the projection: the ASFR path and the sex ratio at birth.

Assumption (documented default)
-------------------------------
The last observed national age-specific fertility schedule (``fertility_rate`` of the
last year before the base year with data) is held constant: the TFR stays at its last
observed value. A scenario may instead

* set ``tfr_target``: the schedule's shape is kept and scaled so the TFR moves linearly
  from the last observed TFR (in the jump-off year) to the target in ``tfr_target_year``
  and stays there (target year ``None`` = reached in the first projected year);
* set ``asfr_multiplier``: every rate is multiplied by this factor (after any target).

Births are split by sex with the national sex ratio at birth (boys per girl). It is read
from the panel when it carries one (a ``sex_ratio_at_birth`` variable or attribute, or
``births`` by ``sex``), else the biological standard 1.05 is used.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from vekst.errors import PanelError

__all__ = [
    "DEFAULT_SEX_RATIO_AT_BIRTH",
    "FertilityDataError",
    "asfr_path",
    "fertility_history",
    "sex_ratio_at_birth",
]

#: Boys per girl at birth when the panel does not say (close to Norway's long-run 1.05-1.06).
DEFAULT_SEX_RATIO_AT_BIRTH = 1.05


class FertilityDataError(PanelError):
    """The panel lacks usable national fertility rates; the message says what to add."""


def fertility_history(panel: xr.Dataset, *, before_year: int | None = None) -> xr.DataArray:
    """National age-specific fertility rates ``(year, age)`` of years with data.

    ``fertility_rate`` (the panel's years) is used when it has a year before
    ``before_year``, else ``fertility_rate_history`` (dim ``hist_year``).

    Parameters
    ----------
    panel
        A validated panel with ``fertility_rate`` (age, year) or
        ``fertility_rate_history`` (hist_year, age).
    before_year
        Keep calendar years strictly before this one (the base year).

    Raises
    ------
    FertilityDataError
        When the variable is missing or has no year with data.
    """
    candidates = []
    if "fertility_rate" in panel:
        candidates.append(panel["fertility_rate"])
    if "fertility_rate_history" in panel:
        candidates.append(panel["fertility_rate_history"].rename(hist_year="year"))
    if not candidates:
        raise FertilityDataError(
            "the panel has neither 'fertility_rate' (age, year) nor 'fertility_rate_history' "
            "(hist_year, age); add national age-specific fertility rates (e.g. HFD ASFR) "
            "before projecting."
        )
    for rates in candidates:
        rates = rates.transpose("year", "age")
        if before_year is not None:
            rates = rates.sel(year=rates["year"] < before_year)
        present = np.asarray(rates.notnull().any("age").values)
        rates = rates.isel(year=np.flatnonzero(present)).fillna(0.0)
        if rates.sizes["year"] > 0:
            break
    if rates.sizes["year"] == 0:
        limit = f" before {before_year}" if before_year is not None else ""
        raise FertilityDataError(
            f"'fertility_rate' has no year{limit} with data; choose a later base year or "
            "add the national rates."
        )
    return rates.astype(np.float64)


def asfr_path(
    history: xr.DataArray,
    years: np.ndarray,
    *,
    tfr_target: float | None = None,
    tfr_target_year: int | None = None,
    asfr_multiplier: float = 1.0,
) -> np.ndarray:
    """Projected national ASFR ``(year, age)`` for the calendar ``years``.

    Parameters
    ----------
    history
        ``(year, age)`` from :func:`fertility_history`; its last year is the jump-off.
    years
        Projected calendar years (ascending).
    tfr_target, tfr_target_year
        Optional TFR target and the year it is reached (see the module docstring).
    asfr_multiplier
        Factor on every rate.
    """
    years = np.asarray(years, dtype=np.int64)
    schedule = np.asarray(history.isel(year=-1).values, dtype=np.float64)
    tfr_last = schedule.sum()
    if tfr_target is None:
        tfr = np.full(years.shape, tfr_last)
    else:
        if tfr_last <= 0:
            raise FertilityDataError(
                "the last observed fertility schedule sums to 0, so it cannot be scaled to "
                f"the TFR target {tfr_target}; check 'fertility_rate'."
            )
        start = int(history["year"].values[-1])
        reach = int(years[0]) if tfr_target_year is None else int(tfr_target_year)
        if reach <= start:
            tfr = np.full(years.shape, float(tfr_target))
        else:
            weight = np.clip((years - start) / (reach - start), 0.0, 1.0)
            tfr = tfr_last + weight * (float(tfr_target) - tfr_last)
    scale = np.divide(tfr, tfr_last, out=np.zeros_like(tfr), where=tfr_last > 0)
    return schedule[None, :] * scale[:, None] * asfr_multiplier


def sex_ratio_at_birth(panel: xr.Dataset, *, before_year: int | None = None) -> tuple[float, str]:
    """Boys per girl at birth and where the number came from.

    Looks, in order, for a ``sex_ratio_at_birth`` variable (mean of its last ten years
    before ``before_year``; dim ``year`` or ``hist_year``), a ``sex_ratio_at_birth``
    attribute, and ``births`` with a ``sex`` dimension; falls back to
    :data:`DEFAULT_SEX_RATIO_AT_BIRTH`.

    Returns
    -------
    (float, str)
        The ratio and its source (recorded in the projection's attrs).
    """
    if "sex_ratio_at_birth" in panel:
        values = panel["sex_ratio_at_birth"]
        if "hist_year" in values.dims:
            values = values.rename(hist_year="year")
        if "year" in values.dims:
            if before_year is not None:
                values = values.sel(year=values["year"] < before_year)
            # Ten years smooth out the year-to-year noise of the ratio.
            values = values.dropna("year").isel(year=slice(-10, None))
        ratio = float(values.mean()) if values.size else float("nan")
        if np.isfinite(ratio) and ratio > 0:
            return ratio, "panel variable 'sex_ratio_at_birth'"
    if "sex_ratio_at_birth" in panel.attrs:
        return float(panel.attrs["sex_ratio_at_birth"]), "panel attribute 'sex_ratio_at_birth'"
    if "births" in panel and "sex" in panel["births"].dims:
        births = panel["births"]
        if before_year is not None and "year" in births.dims:
            births = births.sel(year=births["year"] < before_year)
        by_sex = births.sum([d for d in births.dims if d != "sex"])
        girls, boys = float(by_sex.sel(sex="female")), float(by_sex.sel(sex="male"))
        if girls > 0 and boys > 0:
            return boys / girls, "panel 'births' by sex"
    return DEFAULT_SEX_RATIO_AT_BIRTH, "default 1.05 (panel has no births by sex)"
