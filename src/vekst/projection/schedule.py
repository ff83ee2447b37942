r"""Migration age schedules: how a municipality's net migration spreads over age and sex.

A net flow cannot be spread with one signed schedule without risking negative cells, so a
schedule has two parts, both estimated from the panel's residual ``net_migration``
(municipality, year, age, sex; age at the **end** of the calendar year, age 0 = born in
the year, as in :mod:`vekst.data.components`):

* ``in_share`` (municipality, sex, age), summing to 1 per municipality: the age-sex
  profile of net *gains*, from the positive parts :math:`C_{m,s,a} = \sum_t
  \max(n_{m,t,s,a}, 0)`. A positive net flow is added in proportion to it.
* ``out_propensity`` (municipality, sex, age): the relative rate at which residents of an
  age and sex are *lost*, from the negative parts :math:`O_{m,s,a} = \sum_t
  \max(-n_{m,t,s,a}, 0)` over the exposure :math:`E_{m,s,a} = \sum_t P_{m,t+1,s,a}`
  (population at the end of each year, same age convention). A negative net flow is
  taken in proportion to population x propensity (see :mod:`vekst.projection.kernel`).
  It is scaled to a population-weighted mean of 1; only its shape matters.

Single-age counts of small municipalities are mostly noise, so both parts are pooled
within labour-market regions, and regions toward the nation (empirical Bayes):

.. math::

    \text{in}_m = \frac{C_m + k\,\text{in}_{r[m]}}{\sum C_m + k}, \qquad
    \rho_m = \frac{O_m + e\,\rho_{r[m]}}{E_m + e}

(per cell: a Dirichlet prior worth ``k`` pseudo-movers for the shares, a gamma prior
worth ``e`` person-years for the loss rates). ``k`` = ``prior_strength`` (200 movers) and
``e`` = ``out_prior_exposure`` (500 person-years per age-sex cell) for municipalities;
``region_prior_strength`` (1000) and ``region_out_prior_exposure`` (2000) for regions.
A municipality with tens of thousands of movers keeps its own schedule; one with a few
dozen gets mostly its region's. A prior in person-years per cell matters most where a
cell has almost nobody in it (the oldest ages), which is where raw loss rates are
noise: the residual method also books local excess mortality of the very old as
out-migration.

Without ``net_migration`` in the panel, :func:`standard_schedule` gives a Rogers-Castro
model schedule (the same for every municipality).

Projections with posterior draws use the signed schedules of
:mod:`vekst.projection.agepattern` instead (a positive total can still lose people at
some ages); this gains/losses schedule remains for an explicit ``schedule=`` argument and
for panels from which no signed schedule can be estimated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from vekst.data.panel import SEXES
from vekst.errors import PanelError

__all__ = [
    "MigrationSchedule",
    "ScheduleDataError",
    "estimate_migration_schedule",
    "rogers_castro",
    "standard_schedule",
]



class ScheduleDataError(PanelError):
    """The panel cannot give a migration schedule; the message says what to add."""


@dataclass(frozen=True)
class MigrationSchedule:
    """Age-sex profiles of net gains and losses for every municipality.

    Attributes
    ----------
    municipalities
        Codes, in the panel's order.
    in_share
        ``(municipality, sex, age)``, each municipality sums to 1.
    out_propensity
        ``(municipality, sex, age)``, relative loss rate (population-weighted mean 1).
    source
        How it was made (recorded in the projection's attrs).
    """

    municipalities: np.ndarray
    in_share: np.ndarray
    out_propensity: np.ndarray
    source: str

    def to_dataset(self, ages: np.ndarray | None = None) -> xr.Dataset:
        """The schedule as a labelled dataset."""
        n_age = self.in_share.shape[-1]
        coords = {
            "municipality": [str(m) for m in self.municipalities],
            "sex": list(SEXES),
            "age": np.arange(n_age) if ages is None else np.asarray(ages),
        }
        dims = ("municipality", "sex", "age")
        return xr.Dataset(
            {
                "in_share": (dims, self.in_share),
                "out_propensity": (dims, self.out_propensity),
            },
            coords=coords,
            attrs={"source": self.source},
        )

    def reindex(self, municipalities: np.ndarray) -> MigrationSchedule:
        """The schedule for ``municipalities`` (a subset or reordering of its own)."""
        lookup = {str(m): i for i, m in enumerate(self.municipalities)}
        missing = [str(m) for m in municipalities if str(m) not in lookup]
        if missing:
            raise ScheduleDataError(
                f"the migration schedule has no municipality {missing[:5]}; estimate it from "
                "the same panel that is projected."
            )
        index = np.array([lookup[str(m)] for m in municipalities], dtype=np.int64)
        return MigrationSchedule(
            municipalities=np.asarray(municipalities).astype(str),
            in_share=self.in_share[index],
            out_propensity=self.out_propensity[index],
            source=self.source,
        )


def estimate_migration_schedule(
    panel: xr.Dataset,
    *,
    before_year: int | None = None,
    prior_strength: float = 200.0,
    region_prior_strength: float = 1000.0,
    out_prior_exposure: float = 500.0,
    region_out_prior_exposure: float = 2000.0,
) -> MigrationSchedule:
    """Estimate pooled in- and out-schedules from the panel's residual net migration.

    Parameters
    ----------
    panel
        A validated panel with ``net_migration`` (municipality, year, age, sex) and
        ``population``. Falls back to :func:`standard_schedule` (with a note in
        ``source``) when ``net_migration`` is missing or empty.
    before_year
        Use flows of calendar years strictly before this one (the projection base year).
    prior_strength
        Pseudo-movers pulling a municipality's gain profile toward its region's.
    region_prior_strength
        Pseudo-movers pulling a region's gain profile toward the nation's.
    out_prior_exposure
        Person-years per cell pulling a municipality's loss rates toward its region's.
    region_out_prior_exposure
        Person-years per cell pulling a region's loss rates toward the nation's.

    Returns
    -------
    MigrationSchedule
    """
    strengths = (prior_strength, region_prior_strength, out_prior_exposure,
                 region_out_prior_exposure)
    if min(strengths) < 0:
        raise ValueError(f"prior strengths must be >= 0, got {strengths}")
    municipalities = panel["municipality"].values.astype(str)
    if "net_migration" not in panel:
        return standard_schedule(panel, reason="panel has no 'net_migration'")
    years = np.asarray(panel["year"].values)
    flow_years = years[:-1] if before_year is None else years[(years < before_year)]
    flow_years = flow_years[np.isin(flow_years + 1, years)]
    net = panel["net_migration"].sel(year=flow_years)
    net = net.transpose("municipality", "year", "sex", "age").sel(sex=list(SEXES))
    end_population = (
        panel["population"]
        .sel(year=flow_years + 1)
        .transpose("municipality", "year", "sex", "age")
        .sel(sex=list(SEXES))
    )
    values = np.asarray(net.values, dtype=np.float64)
    observed = np.isfinite(values).all(axis=(2, 3))
    if not observed.any():
        return standard_schedule(panel, reason="'net_migration' has no complete year")
    values = np.where(observed[..., None, None], values, 0.0)
    exposure_all = np.asarray(end_population.values, dtype=np.float64)
    exposure_all = np.where(observed[..., None, None], exposure_all, 0.0)
    gains = np.clip(values, 0, None).sum(1)
    losses = np.clip(-values, 0, None).sum(1)
    exposure = exposure_all.sum(1)

    regions = panel["region"].values.astype(str)
    region_labels, region_index = np.unique(regions, return_inverse=True)
    n_regions = len(region_labels)
    shape = gains.shape[1:]

    def by_region(array: np.ndarray) -> np.ndarray:
        out = np.zeros((n_regions, *shape))
        np.add.at(out, region_index, array)
        return out

    gains_r, losses_r, exposure_r = by_region(gains), by_region(losses), by_region(exposure)
    gains_n, losses_n, exposure_n = gains.sum(0), losses.sum(0), exposure.sum(0)

    # National level: plain shares and rates, with an age-flat floor so no cell is exactly 0
    # (a zero national rate would make the gamma prior of every region degenerate there).
    share_n = (gains_n + 1e-6) / (gains_n.sum() + 1e-6 * gains_n.size)
    mean_rate = losses_n.sum() / max(exposure_n.sum(), 1.0)
    rate_n = (losses_n + 1e-3 * mean_rate) / (exposure_n + 1e-3)
    rate_n = np.maximum(rate_n, 1e-9)

    share_r = _pool_shares(gains_r, share_n[None], region_prior_strength)
    rate_r = _pool_rates(losses_r, exposure_r, rate_n[None], region_out_prior_exposure)
    share_m = _pool_shares(gains, share_r[region_index], prior_strength)
    rate_m = _pool_rates(losses, exposure, rate_r[region_index], out_prior_exposure)

    weights = np.where(exposure.sum((1, 2), keepdims=True) > 0, exposure, exposure_r[region_index])
    mean = (rate_m * weights).sum((1, 2), keepdims=True) / np.maximum(
        weights.sum((1, 2), keepdims=True), 1e-12
    )
    propensity = rate_m / np.maximum(mean, 1e-300)
    first, last = int(flow_years[observed.any(0)].min()), int(flow_years[observed.any(0)].max())
    source = (
        f"estimated from residual net_migration {first}-{last}; pooled within regions "
        f"(gains: {prior_strength:g} pseudo-movers, losses: {out_prior_exposure:g} "
        f"person-years per cell) and regions toward the nation ({region_prior_strength:g}, "
        f"{region_out_prior_exposure:g})"
    )
    return MigrationSchedule(
        municipalities=municipalities,
        in_share=share_m,
        out_propensity=propensity,
        source=source,
    )


def _pool_shares(counts: np.ndarray, prior: np.ndarray, strength: float) -> np.ndarray:
    """Posterior mean of a Dirichlet-multinomial profile, per leading index."""
    total = counts.sum((1, 2), keepdims=True)
    return (counts + strength * prior) / np.maximum(total + strength, 1e-300)


def _pool_rates(
    events: np.ndarray, exposure: np.ndarray, prior_rate: np.ndarray, strength: float
) -> np.ndarray:
    """Posterior mean of Poisson rates under a gamma prior worth ``strength`` person-years."""
    denominator = exposure + strength
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, (events + strength * prior_rate) / safe, prior_rate)


def rogers_castro(ages: np.ndarray) -> np.ndarray:
    """Rogers-Castro model migration rate by age (standard parameters, 7-parameter form).

    Childhood component 0.02 exp(-0.1 x), labour-force component
    0.06 exp(-0.1 (x - 20) - exp(-0.4 (x - 20))) and a constant 0.003.
    """
    x = np.asarray(ages, dtype=np.float64)
    return (
        0.02 * np.exp(-0.1 * x)
        + 0.06 * np.exp(-0.1 * (x - 20.0) - np.exp(-0.4 * (x - 20.0)))
        + 0.003
    )


def standard_schedule(panel: xr.Dataset, *, reason: str = "") -> MigrationSchedule:
    """A schedule for panels without migration by age: Rogers-Castro for everyone.

    ``in_share`` is the model rate times the national population by age and sex
    (movers come from a population shaped like the nation's), normalised;
    ``out_propensity`` is the model rate itself.
    """
    ages = np.asarray(panel["age"].values)
    municipalities = panel["municipality"].values.astype(str)
    rate = rogers_castro(ages)
    population = panel["population"].isel(year=-1).sum("municipality").transpose("sex", "age")
    national = np.asarray(population.sel(sex=list(SEXES)).values, dtype=np.float64)
    profile = rate[None, :] * np.maximum(national, 0.0)
    if profile.sum() <= 0:
        profile = np.broadcast_to(rate[None, :], (2, len(ages))).copy()
    profile = profile / profile.sum()
    n = len(municipalities)
    propensity = np.broadcast_to(rate[None, :] / rate.mean(), (2, len(ages)))
    note = f" ({reason})" if reason else ""
    return MigrationSchedule(
        municipalities=municipalities,
        in_share=np.broadcast_to(profile, (n, 2, len(ages))).copy(),
        out_propensity=np.broadcast_to(propensity, (n, 2, len(ages))).copy(),
        source=f"Rogers-Castro standard schedule{note}",
    )
