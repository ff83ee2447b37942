"""vekst: Bayesian hierarchical models of why places grow or shrink.

The package turns a validated municipal panel (population stocks by single-year age and
sex, employment, commuting, national vital rates) into features, fits the attractiveness
model as a Bayesian hierarchical model beside its published OLS baseline, and projects
populations with posterior-predictive cohort-component projections.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vekst")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "load_default"]


def load_default():
    """Load the embedded default panel (real Norwegian data, 2024 municipality codes).

    Returns
    -------
    xarray.Dataset
        The validated panel; see :mod:`vekst.data.panel` for its schema.
    """
    from vekst.data.default import load_default as _load

    return _load()
