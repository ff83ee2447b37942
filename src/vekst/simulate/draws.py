"""Random draws of a Simulated Norway panel besides migration: the job-growth process,
municipal fertility and mortality deviations and negative-binomial vital events."""

from __future__ import annotations

import numpy as np

from vekst.simulate.truth import JobTruth, VitalTruth

__all__: list[str] = []


def simulate_jobs(
    initial: np.ndarray, n_years: int, jobs: JobTruth, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    national = rng.normal(jobs.national_mu, jobs.national_sigma, n_years)
    national[0] = 0.0
    sd = np.sqrt(jobs.sigma_base**2 + jobs.sigma_small**2 / initial)
    innovation_sd = sd * np.sqrt(1.0 - jobs.ar**2)
    local = np.empty((initial.size, n_years))
    local[:, 0] = rng.normal(0.0, sd)
    for t in range(1, n_years):
        local[:, t] = jobs.ar * local[:, t - 1] + rng.normal(0.0, innovation_sd)
    local[:, 0] = 0.0
    growth = np.cumsum(national[None, :] + local, axis=1) / 100.0
    return np.maximum(np.rint(initial[:, None] * np.exp(growth)), 1.0), national


def negative_binomial(
    mean: np.ndarray, alpha: float | None, rng: np.random.Generator
) -> np.ndarray:
    mean = np.maximum(mean, 0.0)
    if alpha is None:
        return rng.poisson(mean).astype(float)
    return rng.poisson(rng.gamma(alpha, mean / alpha)).astype(float)


def draw_deviation(
    vital: VitalTruth, n_region: int, region_index: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    region = rng.normal(0.0, vital.region_sigma, n_region)
    municipal = rng.normal(0.0, vital.municipality_sigma, region_index.size)
    return region[region_index] + municipal, region
