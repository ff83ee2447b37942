"""What a backtest returns: the long scores, the comparison table and atomic CSV writing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import xarray as xr

from vekst.evaluate.metrics import summarise_scores
from vekst.evaluate.scoring import TOTAL

__all__ = ["MUNICIPALITY", "BacktestResult", "write_csv_atomic"]

#: ``level`` of the rows that score single municipalities.
MUNICIPALITY = "municipality"
_FRONT = ["origin", "method", "horizon", "level", "size_class", "age_group"]


@dataclass
class BacktestResult:
    """Scores, forecasts and notes of a backtest.

    Attributes
    ----------
    scores
        One row per origin, method, horizon, unit and age group (``"total"`` is the whole
        population): ``level`` (``"municipality"``, ``"county"``, ``"region"``; the unit's
        code is in ``municipality``), ``observed``, ``point`` (median), interval bounds,
        ``pe``, ``ape``, ``crps``, ``crps_pct``, ``cover_50/80/95``, ``is_50/80/95`` (see
        :func:`vekst.evaluate.metrics.score_ensemble`), plus ``size_class`` (population on
        1 January of the origin; ``"all"`` for aggregates).
    forecasts
        ``{(origin, method): DataArray (draw, year, municipality, age_group)}`` of the
        origins run in this process (origins resumed from a store have none).
    observed
        Observed population ``(year, municipality, age_group)``.
    notes
        Per origin: the spec used and why, the employment profile, fit diagnostics and
        ``converged``, baseline details, timings, failures.
    settings
        The arguments of the run.
    variance
        Predictive variance of the totals by origin, method, level and horizon (see
        :func:`vekst.evaluate.diagnostics.predictive_variance`).
    """

    scores: pd.DataFrame
    forecasts: dict[tuple[int, str], xr.DataArray]
    observed: xr.DataArray
    notes: dict[int, dict] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    variance: pd.DataFrame = field(default_factory=pd.DataFrame)

    def summary(
        self,
        by: Sequence[str] = ("origin", "method", "horizon"),
        *,
        age_group: str | None = TOTAL,
        size_class: str | None = None,
        level: str | None = MUNICIPALITY,
    ) -> pd.DataFrame:
        """Aggregated scores (see :func:`vekst.evaluate.metrics.summarise_scores`).

        Parameters
        ----------
        by
            Grouping columns, e.g. ``("origin", "method", "horizon", "size_class")``.
        age_group
            Keep one age group (default the totals); ``None`` keeps all rows (then add
            ``"age_group"`` to ``by``).
        size_class
            Keep one size class; ``None`` keeps all.
        level
            Keep one level (default the municipalities); ``None`` keeps all (then add
            ``"level"`` to ``by``).
        """
        rows = self.scores
        if level is not None and "level" in rows.columns:
            rows = rows[rows["level"] == level]
        if age_group is not None:
            rows = rows[rows["age_group"] == age_group]
        if size_class is not None:
            rows = rows[rows["size_class"] == size_class]
        return summarise_scores(rows, by=by)

    def converged(self) -> dict[int, bool | None]:
        """Per origin: whether the Bayesian fit passed the gate (``None``: no fit)."""
        return {int(o): note.get("converged") for o, note in self.notes.items()}

    def table(self, *, pooled: bool = False) -> pd.DataFrame:
        """The comparison table in long format.

        Parameters
        ----------
        pooled
            Pool the origins (every scored unit-year of every origin in one group, so the
            medians are medians over all of them) instead of one row set per origin.

        Returns
        -------
        pandas.DataFrame
            Columns ``origin`` (absent when pooled), ``method, horizon, level, size_class,
            age_group``, the summary scores, then ``converged``: per origin, whether the
            Bayesian fit passed the gate; pooled, the share of origins that passed (empty
            for baselines). Rows: municipal totals over all municipalities
            (``size_class="all"``), by size class, every planner age group over all
            municipalities, and the totals of counties and regions (``level``).
        """
        keys = ["method", "horizon"] if pooled else ["origin", "method", "horizon"]
        overall = self.summary(keys).assign(size_class="all", age_group=TOTAL, level=MUNICIPALITY)
        sizes = self.summary([*keys, "size_class"]).assign(age_group=TOTAL, level=MUNICIPALITY)
        ages = self.summary([*keys, "age_group"], age_group=None).assign(
            size_class="all", level=MUNICIPALITY
        )
        ages = ages[ages["age_group"] != TOTAL]
        parts = [overall, sizes, ages]
        levels = [v for v in self.scores.get("level", pd.Series(dtype=str)).unique()]
        for level in levels:
            if level != MUNICIPALITY:
                parts.append(
                    self.summary(keys, level=level).assign(
                        size_class="all", age_group=TOTAL, level=level
                    )
                )
        table = pd.concat(parts, ignore_index=True)
        gate = self.converged()
        if pooled:
            known = [bool(v) for v in gate.values() if v is not None]
            share = sum(known) / len(known) if known else None
            table["converged"] = [share if m == "bayes" else None for m in table["method"]]
        else:
            table["converged"] = [
                gate.get(int(o)) if m == "bayes" else None
                for o, m in zip(table["origin"], table["method"], strict=True)
            ]
        front = [c for c in _FRONT if c in table.columns]
        return table[front + [c for c in table.columns if c not in front]]

    def to_csv(self, path: str | Path, *, which: str = "table") -> Path:
        """Write :meth:`table` (``which="table"``) or :attr:`scores` (``"scores"``) as CSV.

        The file is written to a temporary file in the same folder and renamed.
        """
        frame = self.table() if which == "table" else self.scores
        return write_csv_atomic(frame, path)


def write_csv_atomic(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a frame to CSV atomically (:func:`vekst.io.atomic_write`).

    A path ending in ``.gz`` is compressed.
    """
    from vekst.io import atomic_write

    path = Path(path)
    compression = "gzip" if path.suffix == ".gz" else None
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, compression=compression))
