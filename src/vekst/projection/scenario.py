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

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from vekst.errors import ScenarioError
from vekst.io import csv_records
from vekst.projection.housing_plan import (
    PlannedCompletions,
    parse_housing_plan,
    read_housing_plan_csv,
)

__all__ = [
    "MAX_RELATIVE_JOB_GROWTH",
    "JobGrowth",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "parse_number",
    "parse_year",
    "read_job_growth_csv",
]

JOB_GROWTH_COLUMNS = ("municipality_or_region", "year", "relative_job_growth")


#: Largest |relative job growth| accepted, in percentage points per year. Norwegian
#: municipalities rarely exceed 10 points; beyond 30 the value is a typo or in the wrong unit.
MAX_RELATIVE_JOB_GROWTH = 30.0
#: Accepted range of each numeric scenario setting: (low, high, unit for the message).
BOUNDS: dict[str, tuple[float, float, str]] = {
    "tfr_target": (0.0, 10.0, "children per woman"),
    "asfr_multiplier": (0.0, 3.0, "(a factor on fertility rates)"),
    "mortality_improvement_multiplier": (
        0.0,
        5.0,
        "(a factor on the mortality trend; use allow_worsening in the trend for worsening)",
    ),
    "e0_shift": (-30.0, 30.0, "years of life expectancy"),
}


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and bool(np.isfinite(value))
    )


def parse_number(value: Any, what: str) -> float:
    """A finite number from a scenario file: a number, or text such as ``"2.5"``,
    ``"2,5"`` or ``"2.5%"`` (the percent sign is dropped: values are percentage points).

    Raises
    ------
    ScenarioError
        For booleans, NaN, infinities and text that is not one number.
    """
    if isinstance(value, str):
        text = value.strip().removesuffix("%").strip().replace("\u2212", "-")
        if text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")  # a decimal comma, as Norwegian spreadsheets write
        try:
            value = float(text)
        except ValueError:
            raise ScenarioError(
                f"{what}: {value!r} is not a number; write e.g. 2.5 (percentage points)."
            ) from None
    if not _is_number(value):
        raise ScenarioError(f"{what}: {value!r} is not a finite number.")
    return float(value)


def parse_year(value: Any, what: str) -> int:
    """A calendar year from a scenario file (``2030`` or ``"2030"``, not ``2030.5``)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ScenarioError(f"{what}: year {value!r} is not a whole year such as 2030.")
    return int(value)


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
    housing_plan
        Planned completed dwellings per municipality and year (see
        :mod:`vekst.projection.housing_plan`); used by fits with ``housing_<lag>``
        covariates, ignored by others. Empty: recent completions continue.
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
    housing_plan: tuple[PlannedCompletions, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        for key, (low, high, unit) in BOUNDS.items():
            value = getattr(self, key)
            if value is None and key == "tfr_target":
                continue
            if not _is_number(value):
                problems.append(f"{key} must be a finite number, not {value!r}")
            elif not low <= value <= high:
                problems.append(f"{key} {value:g} is outside {low:g}..{high:g} {unit}")
        if self.tfr_target_year is not None and (
            isinstance(self.tfr_target_year, bool) or not isinstance(self.tfr_target_year, int)
        ):
            problems.append(f"tfr_target_year must be a year, not {self.tfr_target_year!r}")
        problems.extend(_national_problems(self.national_net_migration))
        if problems:
            raise ScenarioError(f"scenario '{self.name}': " + "; ".join(problems) + ".")
        if isinstance(self.national_net_migration, dict):
            object.__setattr__(
                self,
                "national_net_migration",
                {int(k): float(v) for k, v in self.national_net_migration.items()},
            )
        object.__setattr__(
            self, "housing_plan", parse_housing_plan(self.housing_plan, f"scenario '{self.name}'")
        )
        object.__setattr__(
            self,
            "job_growth",
            tuple(
                row if isinstance(row, JobGrowth) else JobGrowth(**row) for row in self.job_growth
            ),
        )
        for row in self.job_growth:
            growth = row.relative_job_growth
            if not _is_number(growth) or abs(growth) > MAX_RELATIVE_JOB_GROWTH:
                raise ScenarioError(
                    f"scenario '{self.name}': relative job growth {growth!r} for {row.unit} in "
                    f"{row.year} is not a number within +-{MAX_RELATIVE_JOB_GROWTH:g}; give "
                    "percentage points per year relative to the nation (2.5 for 2.5 %)."
                )

    # --- serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-serialisable)."""
        data = asdict(self)
        data["job_growth"] = [asdict(row) for row in self.job_growth]
        data["housing_plan"] = [asdict(row) for row in self.housing_plan]
        return data

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict` (stored in output attrs)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "scenario") -> Scenario:
        """Build from :meth:`to_dict` output (unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        files = {"job_growth_csv", "housing_plan_csv"}
        unknown = sorted(set(data) - known - files)
        if unknown:
            raise ScenarioError(
                f"{source}: unknown scenario key(s) {unknown}; valid keys are "
                f"{sorted(known | files)}."
            )
        data = dict(data)
        rows = []
        for row in data.pop("job_growth", []):
            try:
                unit = row["unit"] if "unit" in row else row["municipality_or_region"]
                where = f"{source}: job growth of {unit}"
                rows.append(
                    JobGrowth(
                        unit=str(unit),
                        year=parse_year(row["year"], where),
                        relative_job_growth=parse_number(row["relative_job_growth"], where),
                    )
                )
            except (KeyError, TypeError) as error:
                raise ScenarioError(
                    f"{source}: job growth row {row!r} is unreadable ({error}); give unit (or "
                    "municipality_or_region), year and relative_job_growth."
                ) from None
        for key in BOUNDS:
            if isinstance(data.get(key), str):
                data[key] = parse_number(data[key], f"{source}: {key}")
        csv_path = data.pop("job_growth_csv", None)
        if csv_path is not None:
            path = Path(csv_path)
            if not path.is_absolute() and source not in ("scenario", "") and Path(source).exists():
                path = Path(source).parent / path
            rows.extend(read_job_growth_csv(path))
        plan = list(parse_housing_plan(data.pop("housing_plan", []), source))
        plan_path = data.pop("housing_plan_csv", None)
        if plan_path is not None:
            plan.extend(read_housing_plan_csv(_beside(plan_path, source)))
        return cls(**data, job_growth=tuple(rows), housing_plan=tuple(plan))

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

        Raises
        ------
        ScenarioError
            When a unit is neither a municipality nor a region code of the panel, or a
            row's year is not among ``years`` (it would otherwise be silently dropped).
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
        outside = sorted({int(row.year) for row in self.job_growth} - set(year_index))
        if outside:
            raise ScenarioError(
                f"scenario '{self.name}': job growth given for year(s) {outside[:10]}, outside "
                f"the projected years {years.min()}-{years.max()}; drop those rows or change "
                "--base-year/--end-year."
            )
        # Regions first, municipalities second, so a municipality row wins.
        for row in sorted(self.job_growth, key=lambda r: resolved[r.unit][0] == "municipality"):
            t = year_index[int(row.year)]
            kind, code = resolved[row.unit]
            if kind == "municipality":
                out[t, muni_index[code]] = row.relative_job_growth
            else:
                out[t, regions == code] = row.relative_job_growth
        return out


def _beside(path: str | Path, source: str) -> Path:
    """A file named in a scenario file, relative to that file's folder."""
    path = Path(path)
    if not path.is_absolute() and source not in ("scenario", "") and Path(source).exists():
        return Path(source).parent / path
    return path


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
    rows = []
    for line, record in csv_records(path, JOB_GROWTH_COLUMNS, "job growth", ScenarioError):
        if None in record:
            # csv.DictReader puts surplus fields under None: an unquoted 2,5 is two fields.
            raise ScenarioError(
                f"{path}, line {line}: more fields than the header ({record[None]!r} left "
                "over); a decimal comma? Write 2.5 or quote it as \"2,5\"."
            )
        if any(record[c] is None or not str(record[c]).strip() for c in JOB_GROWTH_COLUMNS):
            raise ScenarioError(
                f"{path}, line {line}: a value is missing in {dict(record)}; every row "
                f"needs {','.join(JOB_GROWTH_COLUMNS)}."
            )
        where = f"{path}, line {line}"
        rows.append(
            JobGrowth(
                unit=str(record["municipality_or_region"]).strip(),
                year=parse_year(record["year"], where),
                relative_job_growth=parse_number(record["relative_job_growth"], where),
            )
        )
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
