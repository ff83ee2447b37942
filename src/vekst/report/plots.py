"""Figures and tables planners read: fan charts, pyramids, drivers of growth, the barometer.

Every plot function takes plain labelled data (``xarray`` or ``pandas``), draws on the
``ax``/``axes`` it is given or on a new figure, and returns the
:class:`matplotlib.figure.Figure`. Nothing here calls ``show()``, reads files or knows
how the projection or the decomposition were computed, so the functions work on any
array with the documented dimensions. New figures are made with
:class:`matplotlib.figure.Figure` directly rather than ``pyplot``: no global figure
registry fills up when a report draws hundreds of them.

Posterior inputs may carry ``(chain, draw)`` or a single ``draw`` dimension; chains are
stacked into ``draw`` first.
"""

from vekst.agegroups import AGE_GROUPS
from vekst.report.driver_plots import attractiveness_ranking, coefficient_plot, decomposition_chart
from vekst.report.plot_helpers import COMPONENT_LABELS, PlotInputError, stack_draws
from vekst.report.population_plots import fan_chart, population_pyramid
from vekst.report.tables import (
    age_group_table,
    convergence_table,
    driver_summary,
    ranking_table,
    top_k_probability,
)

__all__ = [
    "AGE_GROUPS",
    "COMPONENT_LABELS",
    "PlotInputError",
    "age_group_table",
    "attractiveness_ranking",
    "coefficient_plot",
    "convergence_table",
    "decomposition_chart",
    "driver_summary",
    "fan_chart",
    "population_pyramid",
    "ranking_table",
    "stack_draws",
    "top_k_probability",
]
