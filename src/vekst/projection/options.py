"""What a projection projects and how: the options of :func:`vekst.projection.project`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import xarray as xr

from vekst.io import with_fields
from vekst.projection.kernel import OUT_CAP
from vekst.projection.scenario import Scenario

__all__ = ["ProjectionOptions"]


@dataclass(frozen=True)
class ProjectionOptions:
    """Options of :func:`vekst.projection.project` (every field has a default).

    Attributes
    ----------
    scenario
        Job growth, national migration, housing and fertility/mortality alternatives;
        default the baseline.
    base_year
        Year of the starting stock (1 January); default the panel's last year.
    end_year
        Last 1 January stock projected.
    n_draws
        Draws to project; default all. Fewer are a random subset (by ``seed``), more
        reuse posterior draws with fresh shocks.
    seed
        Seed of the draw subset and of every random shock.
    chunk_size
        Draws per kernel chunk. Small chunks keep the working set in the CPU cache: at
        national size 10 draws per chunk ran ~30 % faster than 100
        (``benchmarks/projection.py``).
    schedule
        Migration age schedule: an :class:`~vekst.projection.agepattern.AgePattern`
        (signed schedules) or a :class:`~vekst.projection.schedule.MigrationSchedule`
        (gains/losses); default the signed schedules estimated from the panel (net
        migration derived by the residual method when the panel lacks it).
    employment_rate
        National employment rates ``(age, sex)`` for DS; default estimated from the panel.
    mortality_window, mortality_method
        Trend estimation, see :func:`~vekst.projection.mortality.estimate_mortality_trend`.
    detail
        ``"full"``: ``population`` by single age and sex; ``"age_groups"``:
        ``population_age_group`` only; ``"totals"``: totals only; ``"auto"``: full while
        the array stays below 2 GiB, else age groups.
    record_components
        Keep the migration-rate components (for
        :func:`vekst.decompose.decompose_projection`).
    out_cap
        Largest share of a cell that may move out in a year.
    dtype
        Cell precision of the kernel.
    trace
        Debug hook passed to :func:`~vekst.projection.kernel.run_kernel` (cell-level
        accounting in tests).
    held_sources
        Sources of uncertainty held at their mean (:data:`vekst.projection.sources.SOURCES`),
        for variance attribution (:func:`vekst.uncertainty.uncertainty_by_source`); the
        other sources keep the random numbers of the same seed.
    sink
        Where the single-age stocks go instead of memory, e.g. a
        :class:`~vekst.projection.zarr_store.ZarrSink` (use
        :func:`~vekst.projection.zarr_store.project_to_zarr`): ``sink.start(n_draws,
        coords, attrs)`` returns the kernel's ``store`` callback. The returned Dataset
        then lacks ``population`` (it is in the sink) and ``detail`` is ``"full"``.
    workers
        Kernel chunks projected at once in threads (:func:`~vekst.projection.kernel.run_kernel`);
        default one per CPU, at most four; one with a ``sink`` (it buffers in order). The
        numbers do not depend on it.
    """

    scenario: Scenario | None = None
    base_year: int | None = None
    end_year: int = 2040
    n_draws: int | None = None
    seed: int = 0
    chunk_size: int = 10
    schedule: Any = None
    employment_rate: xr.DataArray | None = None
    mortality_window: int = 20
    mortality_method: str = "loglinear"
    detail: Literal["auto", "full", "age_groups", "totals"] = "auto"
    record_components: bool = True
    out_cap: float = OUT_CAP
    dtype: type = np.float32
    trace: Callable[..., Any] | None = None
    held_sources: Iterable[str] | None = None
    sink: Any = None
    workers: int | None = None

    def with_overrides(self, **overrides: Any) -> ProjectionOptions:
        """These options with some fields replaced by name.

        Raises
        ------
        TypeError
            Naming an unknown option and listing the known ones.
        """
        return with_fields(
            self, overrides, "project() (see vekst.projection.options.ProjectionOptions)"
        )
