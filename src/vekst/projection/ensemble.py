"""Scenario ensembles: one projection per scenario, as keyed tasks (Dask or serial).

Every scenario is one task of :func:`vekst.cluster.run_tasks`, keyed by the scenario's
name. All scenarios use the run's seed (``options.seed``): common random numbers, so the
same draws get the same shocks in every scenario and the differences between scenarios
are the scenarios', not Monte Carlo noise. The seed depends on nothing but the options,
so a scenario gives the same numbers run alone, serially, or on any worker. A scenario
whose task raises is reported by name and the others are kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import xarray as xr

from vekst.cluster import TaskRunner, run_tasks
from vekst.projection.options import ProjectionOptions
from vekst.projection.scenario import Scenario

__all__ = ["ScenarioEnsemble", "project_scenarios"]


@dataclass
class ScenarioEnsemble:
    """Projections by scenario name and the scenarios that failed.

    Attributes
    ----------
    projections
        ``{scenario name: projection}`` in the order the scenarios were given.
    failures
        ``{scenario name: "ErrorType: message"}``.
    """

    projections: dict[str, xr.Dataset] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def _named(scenarios: Sequence[Scenario | None] | Mapping[str, Scenario | None]) -> dict:
    if isinstance(scenarios, Mapping):
        return {str(name): scenario for name, scenario in scenarios.items()}
    named: dict[str, Scenario | None] = {}
    for scenario in scenarios:
        name = "baseline" if scenario is None else scenario.name
        if name in named:
            raise ValueError(
                f"two scenarios are named {name!r}; give each scenario its own name (the "
                "'name' field of the scenario file) or pass a mapping {name: scenario}."
            )
        named[name] = scenario
    return named


def _scenario_task(
    name: str,
    panel: xr.Dataset,
    draws: xr.Dataset | None,
    scenarios: dict[str, Scenario | None],
    options: ProjectionOptions,
) -> xr.Dataset:
    """Project one scenario (a task of :func:`project_scenarios`)."""
    from vekst.projection.project import project

    return project(panel, draws, replace(options, scenario=scenarios[name]))


def project_scenarios(
    panel: xr.Dataset,
    draws: xr.Dataset | None,
    scenarios: Sequence[Scenario | None] | Mapping[str, Scenario | None],
    options: ProjectionOptions | None = None,
    *,
    runner: TaskRunner | None = None,
) -> ScenarioEnsemble:
    """Project the same draws under several scenarios, one task per scenario.

    Parameters
    ----------
    panel, draws
        As for :func:`~vekst.projection.project`; sent to each worker once.
    scenarios
        Scenarios (``None`` for the baseline), named by their ``name``, or a mapping
        ``{name: scenario}``.
    options
        Projection options shared by every scenario (their ``scenario`` is replaced);
        keep ``detail`` to age groups or totals for many draws, as every projection
        comes back to this process.
    runner
        A :class:`vekst.cluster.TaskRunner` for a Dask cluster; ``None`` runs the
        scenarios one after another here (the same numbers).

    Returns
    -------
    ScenarioEnsemble

    Raises
    ------
    ValueError
        If two scenarios share a name, or none is given.
    """
    named = _named(scenarios)
    if not named:
        raise ValueError("give at least one scenario (None for the baseline).")
    outcome = run_tasks(
        _scenario_task,
        list(named),
        shared={
            "panel": panel,
            "draws": draws,
            "scenarios": named,
            "options": options or ProjectionOptions(),
        },
        runner=runner,
        label="scenario",
    )
    return ScenarioEnsemble(
        projections={str(k): v for k, v in outcome.results.items()},
        failures={str(k): v for k, v in outcome.failures.items()},
    )
