"""Known parameters of a Simulated Norway panel (vital deviations, the job process) and
the truth dataset returned beside the panel."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from vekst.simulate.migration import MigrationTruth

__all__ = ["JobTruth", "SimulationTruth", "VitalTruth", "default_mortality", "truth_dataset"]


@dataclass
class VitalTruth:
    """Known parameters of a fertility or mortality deviation (log scale).

    ``dev[m] = region[r(m)] + municipal[m]`` with ``region ~ N(0, region_sigma)`` and
    ``municipal ~ N(0, municipality_sigma)`` (not centred, as in :mod:`vekst.models.vital`);
    events ~ NegBin(mean = expected * exp(dev), dispersion ``alpha``), Poisson when
    ``alpha`` is ``None``.
    """

    region_sigma: float = 0.08
    municipality_sigma: float = 0.10
    alpha: float | None = 700.0


def default_mortality() -> VitalTruth:
    """Mortality deviation defaults: smaller spread than fertility, dispersion 80."""
    return VitalTruth(region_sigma=0.05, municipality_sigma=0.08, alpha=80.0)


@dataclass
class JobTruth:
    """The job-growth process behind simulated employment by place of work.

    ``log E[k, t] = log E[k, t-1] + g[t] / 100 + u[k, t] / 100`` with national growth
    ``g ~ N(national_mu, national_sigma)`` (%) and local relative growth
    ``u[k, t] = ar * u[k, t-1] + e``, stationary sd ``sqrt(sigma_base**2 + sigma_small**2 /
    E0[k])`` percentage points.
    """

    national_mu: float = 1.0
    national_sigma: float = 1.2
    sigma_base: float = 2.0
    sigma_small: float = 80.0
    ar: float = 0.3


@dataclass
class SimulationTruth:
    """Every known parameter of one Simulated Norway panel.

    Attributes
    ----------
    migration
        Hyperparameters of the migration model (default: the published calibration).
    fertility, mortality
        Municipal deviations of births and deaths (defaults in :mod:`vekst.simulate.panel`).
    jobs
        The job-growth process behind employment by place of work.
    """

    migration: MigrationTruth = field(default_factory=MigrationTruth)
    fertility: VitalTruth = field(default_factory=VitalTruth)
    mortality: VitalTruth = field(default_factory=default_mortality)
    jobs: JobTruth = field(default_factory=JobTruth)


def truth_dataset(  # noqa: PLR0913 - keyword-only record of one run, called once
    settings: SimulationTruth,
    *,
    covariates: tuple[str, ...],
    municipalities: np.ndarray,
    region_labels: list[str],
    region_index: np.ndarray,
    flow_years: list[int],
    x: np.ndarray,
    available: np.ndarray,
    rate_drawn: np.ndarray,
    rate_realised: np.ndarray,
    capped: np.ndarray,
    fert: tuple[np.ndarray, np.ndarray],
    mort: tuple[np.ndarray, np.ndarray],
    expected_births: np.ndarray,
    expected_deaths: np.ndarray,
    death_gap: np.ndarray,
    employment_rate: xr.DataArray,
    national_growth: np.ndarray,
    employment_years: list[int],
    seed: int,
) -> xr.Dataset:
    """The truth of one simulated panel as a labelled dataset (see
    :func:`vekst.simulate.simulate_panel` for its variables); arrays are
    ``(municipality, flow year)`` unless named otherwise."""
    mig = settings.migration
    cov = ("covariate",)
    my = ("municipality", "year")
    growth = np.full(len(flow_years), np.nan)
    growth[[flow_years.index(y) for y in employment_years[1:]]] = national_growth[1:]
    attract_region = np.asarray(mig.attract_region)
    variables = {
        "beta_mu": (cov, [mig.beta_mu[c] for c in covariates]),
        "beta_sigma": (cov, [mig.beta_sigma[c] for c in covariates]),
        "beta_year": (("covariate", "year"), np.asarray(mig.beta_year)),
        "year_effect": (("year",), np.asarray(mig.year_effect)),
        "year_effect_mu": ((), mig.year_effect_mu),
        "year_effect_sigma": ((), mig.year_effect_sigma),
        "attract_region": (("region",), attract_region),
        "attractiveness": (("municipality",), np.asarray(mig.attractiveness)),
        "attract_municipality": (
            ("municipality",),
            np.asarray(mig.attractiveness) - attract_region[region_index],
        ),
        "attract_region_sigma": ((), mig.attract_region_sigma),
        "attract_municipality_sigma": ((), mig.attract_municipality_sigma),
        "sigma_base": ((), mig.sigma_base),
        "sigma_pop": ((), mig.sigma_pop),
        "fert_dev": (("municipality",), fert[0]),
        "fert_region": (("region",), fert[1]),
        "fert_region_sigma": ((), settings.fertility.region_sigma),
        "fert_municipality_sigma": ((), settings.fertility.municipality_sigma),
        "fert_alpha": (
            (),
            np.nan if settings.fertility.alpha is None else settings.fertility.alpha,
        ),
        "mort_dev": (("municipality",), mort[0]),
        "mort_region": (("region",), mort[1]),
        "mort_region_sigma": ((), settings.mortality.region_sigma),
        "mort_municipality_sigma": ((), settings.mortality.municipality_sigma),
        "mort_alpha": (
            (),
            np.nan if settings.mortality.alpha is None else settings.mortality.alpha,
        ),
        "x": (("covariate", "municipality", "year"), x),
        "x_available": (("covariate", "municipality", "year"), available),
        "net_migration_rate_drawn": (my, rate_drawn),
        "net_migration_rate": (my, rate_realised),
        "migration_capped": (my, capped),
        "expected_births": (my, expected_births),
        "expected_deaths": (my, expected_deaths),
        "death_gap": (my, death_gap),
        "national_job_growth": (("year",), growth),
    }
    ds = xr.Dataset(
        variables,
        coords={
            "covariate": list(covariates),
            "municipality": municipalities,
            "year": np.asarray(flow_years, dtype=int),
            "region": region_labels,
            "municipality_region": ("municipality", [region_labels[i] for i in region_index]),
        },
    )
    ds["employment_rate"] = employment_rate.reset_coords(drop=True)
    units = {
        "beta_year": "% of population per unit of covariate",
        "year_effect": "% of population",
        "attractiveness": "% of population per year",
        "attract_region": "% of population per year",
        "net_migration_rate_drawn": "% of population on 1 January",
        "net_migration_rate": "% of population on 1 January",
        "migration_capped": "persons (out-migration that had no one left to move)",
        "fert_dev": "log ratio of births to expected births",
        "mort_dev": "log ratio of deaths to expected deaths",
        "death_gap": "persons: observed deaths minus deaths implied by national survival",
    }
    for name, unit in units.items():
        ds[name].attrs["units"] = unit
    ds.attrs = {"seed": int(seed), "description": "known truth of a Simulated Norway panel"}
    return ds
