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
import pytensor.tensor as pt

from vekst.models.data import VitalData
from vekst.models.spec import FertilitySpec

__all__ = ["add_vital_block", "build_vital_model", "centred_municipalities"]

#: ``auto`` centres a municipality's deviation when the standard error its own events give
#: (1 / sqrt(expected events over all years)) is below this share of the prior sd of the
#: municipal sigma.
CENTRE_SE_SHARE = 0.25

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


def centred_municipalities(vspec: FertilitySpec, data: VitalData) -> np.ndarray:
    """Which municipalities' deviations are sampled centred (boolean, municipality).

    ``"auto"`` centres where the events inform the deviation well: the Poisson standard
    error of a log rate, 1 / sqrt(sum of expected events), is below ``CENTRE_SE_SHARE``
    times ``dev_municipality_sigma_sd`` (0.05 with the default prior; the national fit's
    municipal sigma came out at 0.055). On the embedded births ~75 % of municipalities are
    centred; the rest have fewer than ~400 expected births over 17 years.
    """
    n = len(data.municipalities)
    if vspec.parameterization == "centered":
        return np.ones(n, dtype=bool)
    if vspec.parameterization == "non_centered":
        return np.zeros(n, dtype=bool)
    total = np.nansum(np.asarray(data.expected, dtype=float), axis=1)
    with np.errstate(divide="ignore"):
        standard_error = 1.0 / np.sqrt(np.maximum(total, 0.0))
    return standard_error < CENTRE_SE_SHARE * vspec.priors["dev_municipality_sigma_sd"]


def add_vital_block(vspec: FertilitySpec, data: VitalData, *, collapse_years: bool = True) -> None:
    """Add a deviation block (``fert_*`` or ``mort_*`` variables) to the model in context.

    Parameters
    ----------
    vspec
        ``spec.fertility`` or ``spec.mortality``.
    data
        Observed and expected events.
    collapse_years
        A Poisson block without year drift has the same deviation in every year, so its
        likelihood depends on each municipality's events summed over years only
        (:func:`_collapsed_poisson`); ``False`` writes it cell by cell (same posterior,
        for tests).
    """
    prefix = PREFIX[data.kind]
    priors = vspec.priors
    year_dim = f"{data.kind}_year"
    region_sigma = pm.HalfNormal(f"{prefix}_region_sigma", priors["dev_region_sigma_sd"])
    muni_sigma = pm.HalfNormal(f"{prefix}_municipality_sigma", priors["dev_municipality_sigma_sd"])
    centred = centred_municipalities(vspec, data)
    region_index = data.region_index()
    if vspec.parameterization == "non_centered":
        region_z = pm.Normal(f"{prefix}_region_z", 0.0, 1.0, dims="region")
        region = region_sigma * region_z
    else:
        # A region pools all its municipalities' events: well informed, centred.
        region = pm.Normal(f"{prefix}_region", 0.0, region_sigma, dims="region")
    if centred.all():
        deviation = pm.Normal(
            f"{prefix}_dev", region[region_index], muni_sigma, dims="municipality"
        )
    else:
        # Partial centring: a municipality whose events pin its deviation down is sampled
        # centred, one with few events non-centred (its deviation is mostly prior, where
        # the centred form makes a funnel with the municipal sigma).
        # The choice is data (not a constant) so a compiled model reused for another
        # panel of the same shape follows that panel's event counts.
        is_centred = pm.Data(f"{data.kind}_centred", centred.astype(float), dims="municipality")
        is_centred = pt.gt(is_centred, 0.5)
        loc = pt.where(is_centred, region[region_index], 0.0)
        scale = pt.where(is_centred, muni_sigma, 1.0)
        raw = pm.Normal(f"{prefix}_dev_partial_z", loc, scale, dims="municipality")
        deviation = pm.Deterministic(
            f"{prefix}_dev",
            pt.where(is_centred, raw, region[region_index] + muni_sigma * raw),
            dims="municipality",
        )
    if collapse_years and vspec.likelihood == "poisson" and not vspec.year_drift:
        _collapsed_poisson(data, deviation)
        return
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


def _collapsed_poisson(data: VitalData, deviation: pt.TensorVariable) -> None:
    r"""The Poisson likelihood of a deviation constant over years, on sufficient statistics.

    With :math:`\mu_{mt} = E_{mt} e^{d_m}`,
    :math:`\sum_t \log p(B_{mt}) = d_m \sum_t B_{mt} - e^{d_m} \sum_t E_{mt} + c_m`, where
    :math:`c_m` does not depend on the parameters. Why: the cell-wise form evaluated
    ``gammaln(B + 1)`` and an ``exp`` for every municipality x year at every gradient,
    ~180 microseconds of the national fit's ~730 (measured with nutpie); the sums need one
    ``exp`` per municipality. Cells without an observation or an expectation are left out
    of both sums.
    """
    observed = np.asarray(data.observed, dtype=float)
    expected = np.asarray(data.expected, dtype=float)
    usable = np.isfinite(observed) & np.isfinite(expected)
    # Data, not constants: a compiled model reused for new data must see the new events.
    observed_total = pm.Data(
        f"{data.kind}_observed_total",
        np.where(usable, observed, 0.0).sum(axis=1),
        dims="municipality",
    )
    expected_total = pm.Data(
        f"{data.kind}_expected_total",
        np.where(usable, expected, 0.0).sum(axis=1),
        dims="municipality",
    )
    pm.Potential(
        f"{data.kind}_loglik",
        pt.sum(observed_total * deviation - expected_total * pt.exp(deviation)),
    )
