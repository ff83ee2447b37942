"""Projection scenarios: job growth paths and fertility/mortality alternatives.

A :class:`Scenario` is plain data. It round-trips through :meth:`Scenario.to_dict` /
:meth:`Scenario.from_dict` (and JSON), and the projection stores it in its attrs, so every
output file says which assumptions produced it.

Job growth is **relative job growth** (RA, percentage points: job growth of a municipality
minus national job growth), per calendar year, for a municipality code or a labour-market
region code (every municipality of the region gets the value; a municipality row wins over
its region's row). Years and places not given get 0, i.e. jobs grow as fast as in the
nation (the baseline). A job-growth CSV has the columns
``municipality_or_region,year,relative_job_growth``.

Fertility and mortality alternatives are described in :mod:`vekst.projection.fertility`
and :mod:`vekst.projection.mortality`.
"""

from __future__ import annotations

import csv
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["JobGrowth", "Scenario", "ScenarioError", "load_scenario", "read_job_growth_csv"]

JOB_GROWTH_COLUMNS = ("municipality_or_region", "year", "relative_job_growth")


class ScenarioError(ValueError):
    """A scenario is invalid; the message names the file, row or field and what to do."""


@dataclass(frozen=True)
class JobGrowth:
    """Relative job growth (% points vs the nation) of one place in one calendar year."""

    unit: str
    year: int
    relative_job_growth: float


@dataclass(frozen=True)
class Scenario:
    """Assumptions of one projection besides the fitted model.

    Attributes
    ----------
    name, description
        Labels written to the outputs.
    job_growth
        Relative job growth paths (see the module docstring); empty = baseline (0).
    tfr_target, tfr_target_year
        Move the national TFR linearly to ``tfr_target`` by ``tfr_target_year``
        (``None`` = at once); ``None`` target = hold the last observed schedule.
    asfr_multiplier
        Factor on all national fertility rates.
    mortality_improvement_multiplier
        Factor on the estimated yearly mortality improvement (1 = trend, 0 = frozen).
    e0_shift
        Years added to life expectancy at birth (both sexes) by the end year, phased in
        linearly from 0 in the base year; applied on top of the improvement trend.
    national_net_migration
        National net immigration in persons per year: one number for every projected
        year, or ``{year: persons}`` covering every projected year (e.g. an official
        national assumption). ``None``: the fitted stochastic process (fits with
        ``national_immigration = true``).
    """

    name: str = "baseline"
    description: str = ""
    job_growth: tuple[JobGrowth, ...] = ()
    tfr_target: float | None = None
    tfr_target_year: int | None = None
    asfr_multiplier: float = 1.0
    mortality_improvement_multiplier: float = 1.0
    e0_shift: float = 0.0
    national_net_migration: float | dict[int, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if self.tfr_target is not None and not 0 <= self.tfr_target <= 10:
            problems.append(f"tfr_target {self.tfr_target} is outside 0..10 children per woman")
        if self.asfr_multiplier < 0:
            problems.append(f"asfr_multiplier {self.asfr_multiplier} is negative")
        if self.mortality_improvement_multiplier < 0:
            problems.append(
                f"mortality_improvement_multiplier {self.mortality_improvement_multiplier} "
                "is negative (use allow_worsening in the trend instead)"
            )
        if not -30 <= self.e0_shift <= 30:
            problems.append(f"e0_shift {self.e0_shift} years is implausible (|shift| > 30)")
        problems.extend(_national_problems(self.national_net_migration))
        if problems:
            raise ScenarioError(f"scenario '{self.name}': " + "; ".join(problems))
        if isinstance(self.national_net_migration, dict):
            object.__setattr__(
                self,
                "national_net_migration",
                {int(k): float(v) for k, v in self.national_net_migration.items()},
            )
        object.__setattr__(
            self,
            "job_growth",
            tuple(
                row if isinstance(row, JobGrowth) else JobGrowth(**row) for row in self.job_growth
            ),
        )

    # --- serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-serialisable)."""
        data = asdict(self)
        data["job_growth"] = [asdict(row) for row in self.job_growth]
        return data

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict` (stored in output attrs)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "scenario") -> Scenario:
        """Build from :meth:`to_dict` output (unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"job_growth_csv"})
        if unknown:
            raise ScenarioError(
                f"{source}: unknown scenario key(s) {unknown}; valid keys are "
                f"{sorted(known | {'job_growth_csv'})}."
            )
        data = dict(data)
        rows = []
        for row in data.pop("job_growth", []):
            try:
                unit = row["unit"] if "unit" in row else row["municipality_or_region"]
                rows.append(
                    JobGrowth(
                        unit=str(unit),
                        year=int(row["year"]),
                        relative_job_growth=float(row["relative_job_growth"]),
                    )
                )
            except (KeyError, TypeError, ValueError) as error:
                raise ScenarioError(
                    f"{source}: job growth row {row!r} is unreadable ({error}); give unit (or "
                    "municipality_or_region), year and relative_job_growth."
                ) from None
        csv_path = data.pop("job_growth_csv", None)
        if csv_path is not None:
            path = Path(csv_path)
            if not path.is_absolute() and source not in ("scenario", "") and Path(source).exists():
                path = Path(source).parent / path
            rows.extend(read_job_growth_csv(path))
        return cls(**data, job_growth=tuple(rows))

    @classmethod
    def from_json(cls, text: str) -> Scenario:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def national_net_migration_path(self, years: np.ndarray) -> np.ndarray | None:
        """National net migration (persons) for each of ``years``, or ``None``.

        Raises
        ------
        ScenarioError
            When a yearly path misses a projected year.
        """
        path = self.national_net_migration
        if path is None:
            return None
        if not isinstance(path, dict):
            return np.full(len(years), float(path))
        missing = [int(y) for y in years if int(y) not in path]
        if missing:
            raise ScenarioError(
                f"scenario '{self.name}': national_net_migration has no value for "
                f"{missing[:5]}; give every projected year or one number for all years."
            )
        return np.array([path[int(y)] for y in years])

    # --- arrays for the kernel ----------------------------------------------------------
    def job_growth_array(self, panel: xr.Dataset, years: np.ndarray) -> np.ndarray:
        """Relative job growth (%) as ``(year, municipality)`` for the projected years.

        Region rows fill every municipality of the region; municipality rows override.
        Rows for years outside ``years`` are ignored.

        Raises
        ------
        ScenarioError
            When a unit is neither a municipality nor a region code of the panel.
        """
        years = np.asarray(years, dtype=np.int64)
        municipalities = panel["municipality"].values.astype(str)
        regions = panel["region"].values.astype(str)
        muni_index = {m: i for i, m in enumerate(municipalities)}
        region_set = set(regions)
        year_index = {int(y): i for i, y in enumerate(years)}
        out = np.zeros((len(years), len(municipalities)))
        resolved = {row.unit: _resolve_unit(row.unit, muni_index, region_set)
                    for row in self.job_growth}
        unknown = sorted(unit for unit, found in resolved.items() if found is None)
        if unknown:
            raise ScenarioError(
                f"scenario '{self.name}': job growth given for {unknown[:10]}, which are "
                "neither municipality codes nor region codes of the panel; use 4-digit "
                "municipality codes or the BA-region codes in panel['region']."
            )
        # Regions first, municipalities second, so a municipality row wins.
        for row in sorted(self.job_growth, key=lambda r: resolved[r.unit][0] == "municipality"):
            t = year_index.get(int(row.year))
            if t is None:
                continue
            kind, code = resolved[row.unit]
            if kind == "municipality":
                out[t, muni_index[code]] = row.relative_job_growth
            else:
                out[t, regions == code] = row.relative_job_growth
        return out


def _national_problems(path) -> list[str]:
    """Plausibility of a national net-migration path (persons per year)."""
    if path is None:
        return []
    values = list(path.values()) if isinstance(path, dict) else [path]
    problems = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"national_net_migration {value!r} is not a number of persons")
        elif not np.isfinite(value) or abs(value) > 1e6:
            problems.append(
                f"national_net_migration {value} persons a year is implausible (|value| > 1e6)"
            )
    return problems


def _resolve_unit(unit: str, municipalities: dict, regions: set) -> tuple[str, str] | None:
    """``("municipality" | "region", code)`` for a unit, restoring leading zeros a
    spreadsheet may have dropped (``301`` -> ``0301``, ``5`` -> ``005``)."""
    unit = unit.strip()
    if unit in municipalities:
        return "municipality", unit
    if unit in regions:
        return "region", unit
    if unit.isdigit():
        if unit.zfill(4) in municipalities:
            return "municipality", unit.zfill(4)
        for code in regions:
            if code.isdigit() and code.lstrip("0") == unit.lstrip("0"):
                return "region", code
    return None


def read_job_growth_csv(path: str | Path) -> list[JobGrowth]:
    """Read ``municipality_or_region,year,relative_job_growth`` rows.

    Raises
    ------
    ScenarioError
        On missing columns or unreadable values (naming the file and line).
    """
    path = Path(path)
    if not path.exists():
        raise ScenarioError(f"job growth file {path} not found.")
    rows = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in JOB_GROWTH_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ScenarioError(
                f"{path}: missing column(s) {missing}; the header must be "
                f"{','.join(JOB_GROWTH_COLUMNS)}."
            )
        for line, record in enumerate(reader, start=2):
            try:
                unit = str(record["municipality_or_region"]).strip()
                rows.append(
                    JobGrowth(
                        unit=unit,
                        year=int(record["year"]),
                        relative_job_growth=float(record["relative_job_growth"]),
                    )
                )
            except (TypeError, ValueError) as error:
                raise ScenarioError(
                    f"{path}, line {line}: cannot read {dict(record)} ({error}); year must be "
                    "an integer and relative_job_growth a number in percentage points."
                ) from None
    return rows


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario from ``.json``, ``.toml`` (full scenario) or ``.csv`` (job growth).

    A JSON/TOML file may name a job-growth CSV under ``job_growth_csv`` (relative to the
    file's folder).
    """
    path = Path(path)
    if not path.exists():
        raise ScenarioError(f"scenario file {path} not found.")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return Scenario(name=path.stem, job_growth=tuple(read_job_growth_csv(path)))
    try:
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        elif suffix == ".toml":
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        else:
            raise ScenarioError(
                f"{path}: unknown scenario format '{suffix}'; use .json, .toml or a job "
                "growth .csv."
            )
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        raise ScenarioError(f"{path}: cannot parse ({error}).") from None
    data.setdefault("name", path.stem)
    return Scenario.from_dict(data, source=str(path))
