"""Posterior-predictive cohort-component projections of every municipality.

* :func:`project` -- the driver (panel + posterior draws + scenario -> labelled dataset).
* :class:`Scenario`, :func:`load_scenario` -- job growth and fertility/mortality
  alternatives.
* :func:`population_summary`, :func:`age_group_summary`, :func:`aggregate`,
  :func:`write_projection_files` -- quantiles (draws are summed first, quantiles taken last) and
  files.
* :func:`estimate_migration_schedule`, :func:`estimate_mortality_trend` -- the age
  schedule of migration and the mortality improvement assumption.
* :func:`project_scenarios` -- one projection per scenario, as tasks on Dask or serially.
* :func:`run_kernel` -- the numpy kernel underneath.
"""

from vekst.projection.ensemble import ScenarioEnsemble, project_scenarios
from vekst.projection.kernel import KernelInputs, KernelResult, run_kernel
from vekst.projection.mortality import estimate_mortality_trend, life_expectancy
from vekst.projection.options import ProjectionOptions
from vekst.projection.outputs import (
    CsvStyle,
    age_group_summary,
    aggregate,
    population_summary,
    write_projection_files,
)
from vekst.projection.project import AGE_GROUPS, ProjectionInputError, make_test_draws, project
from vekst.projection.scenario import JobGrowth, Scenario, ScenarioError, load_scenario
from vekst.projection.schedule import MigrationSchedule, estimate_migration_schedule

__all__ = [
    "AGE_GROUPS",
    "CsvStyle",
    "JobGrowth",
    "KernelInputs",
    "KernelResult",
    "MigrationSchedule",
    "ProjectionInputError",
    "ProjectionOptions",
    "Scenario",
    "ScenarioEnsemble",
    "ScenarioError",
    "age_group_summary",
    "aggregate",
    "estimate_migration_schedule",
    "estimate_mortality_trend",
    "life_expectancy",
    "load_scenario",
    "make_test_draws",
    "population_summary",
    "project",
    "project_scenarios",
    "run_kernel",
    "write_projection_files",
]
