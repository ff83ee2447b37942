"""Figures and the HTML report.

* :mod:`vekst.report.plots` -- plot functions that take labelled data and return figures
  (fan charts, pyramids, drivers of growth, the attractiveness barometer, coefficients)
  and the tables beside them.
* :func:`write_report` -- one self-contained HTML page: every municipality, county and
  region selectable, figures embedded, Norwegian or English.
"""

from vekst.report.html import ReportInputError, ReportOptions, default_municipalities, write_report
from vekst.report.plots import (
    AGE_GROUPS,
    PlotInputError,
    age_group_table,
    attractiveness_ranking,
    coefficient_plot,
    convergence_table,
    decomposition_chart,
    driver_summary,
    fan_chart,
    population_pyramid,
    ranking_table,
    top_k_probability,
)

__all__ = [
    "AGE_GROUPS",
    "PlotInputError",
    "ReportInputError",
    "ReportOptions",
    "age_group_table",
    "attractiveness_ranking",
    "coefficient_plot",
    "convergence_table",
    "decomposition_chart",
    "default_municipalities",
    "driver_summary",
    "fan_chart",
    "population_pyramid",
    "ranking_table",
    "top_k_probability",
    "write_report",
]
