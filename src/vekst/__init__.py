"""vekst: Bayesian hierarchical models of why places grow or shrink.

The package turns a validated municipal panel (population stocks by single-year age and
sex, employment, commuting, national vital rates) into features, fits the attractiveness
model as a Bayesian hierarchical model beside its published OLS baseline, and projects
populations with posterior-predictive cohort-component projections.

The names a notebook needs are available here::

    import vekst

    panel = vekst.load_default()
    fit = vekst.fit_panel(panel, config=vekst.SamplerConfig(draws=500, tune=500))
    projection = vekst.project_fit(fit, panel, end_year=2040)
    vekst.plots.fan_chart(...)

They are imported on first use (module ``__getattr__``), so ``import vekst`` stays fast
and does not load PyMC.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("vekst")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

#: Public name -> (module, attribute); attribute ``None`` means the module itself.
_LAZY: dict[str, tuple[str, str | None]] = {
    "load_panel": ("vekst.data.panel", "load_panel"),
    "validate_panel": ("vekst.data.panel", "validate_panel"),
    "design_matrix": ("vekst.features", "design_matrix"),
    "load_spec": ("vekst.models.spec", "load_spec"),
    "fit_ols": ("vekst.models.ols", "fit_ols"),
    "SamplerConfig": ("vekst.workflow", "SamplerConfig"),
    "fit_panel": ("vekst.workflow", "fit_panel"),
    "project_fit": ("vekst.workflow", "project_fit"),
    "load_fit": ("vekst.fit", "load_fit"),
    "save_fit": ("vekst.fit", "save_fit"),
    "Scenario": ("vekst.projection.scenario", "Scenario"),
    "load_scenario": ("vekst.projection.scenario", "load_scenario"),
    "write_report": ("vekst.report.html", "write_report"),
    "ReportOptions": ("vekst.report.html", "ReportOptions"),
    "backtest": ("vekst.evaluate.backtest", "backtest"),
    "BacktestConfig": ("vekst.evaluate.backtest", "BacktestConfig"),
    "simulate_panel": ("vekst.simulate.panel", "simulate_panel"),
    "uncertainty_by_source": ("vekst.uncertainty", "uncertainty_by_source"),
    "plots": ("vekst.report.plots", None),
}

__all__ = ["__version__", "load_default", *sorted(_LAZY)]


def load_default():
    """Load the embedded default panel (real Norwegian data, 2024 municipality codes).

    Returns
    -------
    xarray.Dataset
        The validated panel; see :mod:`vekst.data.panel` for its schema.
    """
    from vekst.data.default import load_default as _load

    return _load()


def __getattr__(name: str) -> Any:
    # Imported on first access: the fit and report modules pull in PyMC and matplotlib,
    # which a script that only loads a panel should not pay for.
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'vekst' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
