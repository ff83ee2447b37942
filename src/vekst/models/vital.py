r"""Fertility and mortality deviation models.

.. math::

    B_{mt} \sim \text{NegBin}\big(E_{mt} \exp(d_m + \tau_t), \alpha\big), \qquad
    d_m = d_{\text{region}[m]} + \delta_m

* :math:`E_{mt}`: expected events by indirect standardisation (women by age x national
  fertility rates; persons by age and sex x national death rates).
* :math:`d_m`: the municipality's log deviation (``fert_dev`` / ``mort_dev``), partially
  pooled within labour-market regions: small places are shrunk toward their region.
* :math:`\tau_t`: optional common drift by year (``year_drift``).

A municipality's deviation is stable over many years, which is why it belongs in a
forecast. Mortality deviation is only estimated where deaths are observed; the embedded
data has none, so the mortality block is skipped there.
"""

from __future__ import annotations

import numpy as np
import pymc as pm

from vekst.models.data import VitalData
from vekst.models.spec import FertilitySpec

__all__ = ["add_vital_block", "build_vital_model"]

PREFIX = {"births": "fert", "deaths": "mort"}


def build_vital_model(vspec: FertilitySpec, data: VitalData) -> pm.Model:
    """Build a fertility (births) or mortality (deaths) deviation model.

    Parameters
    ----------
    vspec
        ``spec.fertility`` or ``spec.mortality``.
    data
        Observed and expected events from :func:`vekst.models.data.vital_data`.
    """
    coords = {
        "municipality": [str(m) for m in data.municipalities],
        "region": sorted({str(r) for r in data.regions}),
        f"{data.kind}_year": [int(y) for y in data.years],
    }
    with pm.Model(coords=coords) as model:
        add_vital_block(vspec, data)
    return model


def add_vital_block(vspec: FertilitySpec, data: VitalData) -> None:
    """Add a deviation block (``fert_*`` or ``mort_*`` variables) to the model in context."""
    prefix = PREFIX[data.kind]
    priors = vspec.priors
    year_dim = f"{data.kind}_year"
    region_sigma = pm.HalfNormal(f"{prefix}_region_sigma", priors["dev_region_sigma_sd"])
    muni_sigma = pm.HalfNormal(f"{prefix}_municipality_sigma", priors["dev_municipality_sigma_sd"])
    if vspec.parameterization == "centered":
        # Event counts inform each deviation strongly (births 2005-2021: 17 years x tens to
        # thousands of events), where centring samples ~14x faster than non-centring.
        region = pm.Normal(f"{prefix}_region", 0.0, region_sigma, dims="region")
        deviation = pm.Normal(
            f"{prefix}_dev", region[data.region_index()], muni_sigma, dims="municipality"
        )
    else:
        region_z = pm.Normal(f"{prefix}_region_z", 0.0, 1.0, dims="region")
        muni_z = pm.Normal(f"{prefix}_municipality_z", 0.0, 1.0, dims="municipality")
        deviation = pm.Deterministic(
            f"{prefix}_dev",
            (region_sigma * region_z)[data.region_index()] + muni_sigma * muni_z,
            dims="municipality",
        )
    # Data, not a constant: a compiled model reused for new data must see the new
    # expected events (nutpie's with_data only swaps pm.Data inputs).
    log_expected = pm.Data(
        f"{data.kind}_expected_log",
        np.log(np.maximum(data.expected, 1e-9)),
        dims=("municipality", year_dim),
    )
    log_mu = log_expected + deviation[:, None]
    if vspec.year_drift:
        drift_sigma = pm.HalfNormal(f"{prefix}_drift_sigma", priors["drift_sigma_sd"])
        drift = pm.GaussianRandomWalk(
            f"{prefix}_drift",
            sigma=drift_sigma,
            init_dist=pm.Normal.dist(0.0, 0.1),
            dims=year_dim,
        )
        log_mu = log_mu + drift[None, :]
    observed = pm.Data(f"{data.kind}_observed", data.observed, dims=("municipality", year_dim))
    if vspec.likelihood == "negative_binomial":
        alpha = pm.HalfNormal(f"{prefix}_alpha", priors["alpha_sd"])
        pm.NegativeBinomial(
            f"{data.kind}_obs",
            mu=pm.math.exp(log_mu),
            alpha=alpha,
            observed=observed,
            dims=("municipality", year_dim),
        )
    else:
        pm.Poisson(
            f"{data.kind}_obs",
            mu=pm.math.exp(log_mu),
            observed=observed,
            dims=("municipality", year_dim),
        )
