"""Model specifications: the declarative part of a model, read from ``models/*.toml``.

A spec says which covariates enter the migration model, how coefficients and
attractiveness are pooled, which likelihoods are used and what the priors are. Builders in
:mod:`vekst.models.migration`, :mod:`vekst.models.vital` and :mod:`vekst.models.joint` turn
a spec plus data into a ``pm.Model``; the OLS baseline reads the same spec.

Every problem in a spec file is collected and reported at once in one
:class:`SpecError`, so a user fixes a file in one pass.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vekst.errors import SpecError

__all__ = [
    "KNOWN_COVARIATES",
    "FertilitySpec",
    "MigrationSpec",
    "ModelSpec",
    "SpecError",
    "default_spec_path",
    "load_spec",
    "spec_from_dict",
]

#: Covariates the feature layer can provide (see vekst.features.design_matrix).
KNOWN_COVARIATES: tuple[str, ...] = (
    "vra_0",
    "vra_1",
    "vra_2",
    "centrality",
    "ds",
    "housing_0",
    "housing_1",
)
LIKELIHOODS_MIGRATION = ("normal", "student_t")
LIKELIHOODS_VITAL = ("poisson", "negative_binomial")
YEAR_COEFFICIENTS = ("pooled", "centered", "non_centered", "auto")
TIME_STRUCTURES = ("iid", "ar1")
REGIONAL_SHOCKS = ("none", "county")
INNOVATIONS = ("normal", "student_t")
ATTRACTIVENESS_LEVELS = ("county", "region", "municipality")

_MIGRATION_PRIOR_SCALARS = {
    "year_effect_mu_sd": 1.0,
    "year_effect_sigma_sd": 0.5,
    "attract_region_sigma_sd": 0.5,
    "attract_county_sigma_sd": 0.3,
    "attract_municipality_sigma_sd": 0.5,
    "attract_drift_sigma_sd": 0.05,
    "sigma_base_sd": 0.5,
    "sigma_pop_sd": 2.0,
    "national_mu_sd": 1.0,
    "national_sigma_sd": 0.5,
    "loading_sd": 2.0,
    "persistence_sd": 1.0,
    "regional_sigma_sd": 0.3,
    "attract_walk_sigma_sd": 0.2,
    "attract_walk_slope_sd": 0.5,
}
_MIGRATION_PRIOR_TABLES = ("beta_mu_mean", "beta_mu_sd", "beta_sigma_sd")
_VITAL_PRIOR_SCALARS = {
    "dev_region_sigma_sd": 0.2,
    "dev_municipality_sigma_sd": 0.2,
    "alpha_sd": 100.0,
    "drift_sigma_sd": 0.02,
}
_TOP_KEYS = {"name", "description", "migration", "fertility", "mortality"}
_MIGRATION_KEYS = {
    "covariates",
    "likelihood",
    "student_t_nu",
    "year_coefficients",
    "year_coefficients_exchangeable",
    "attractiveness",
    "attractiveness_drift",
    "attractiveness_centered",
    "attractiveness_orthogonal_to",
    "loading_orthogonal_to",
    "time_structure",
    "innovations",
    "innovations_nu",
    "national_immigration",
    "local_persistence",
    "regional_shocks",
    "attractiveness_walk",
    "attractiveness_walk_min_population",
    "priors",
}
_VITAL_KEYS = {"enabled", "likelihood", "year_drift", "parameterization", "priors"}


@dataclass(frozen=True)
class MigrationSpec:
    """The net-migration submodel."""

    covariates: tuple[str, ...]
    likelihood: str = "student_t"
    student_t_nu: float = 5.0
    year_coefficients: str = "non_centered"
    year_coefficients_exchangeable: tuple[str, ...] = ()
    attractiveness: tuple[str, ...] = ("region", "municipality")
    attractiveness_drift: bool = False
    attractiveness_centered: bool | str = "auto"
    attractiveness_orthogonal_to: tuple[str, ...] = ()
    loading_orthogonal_to: tuple[str, ...] = ()
    time_structure: str = "iid"
    innovations: str = "normal"
    innovations_nu: float = 4.0
    national_immigration: bool = False
    local_persistence: bool = False
    regional_shocks: str = "none"
    attractiveness_walk: bool = False
    attractiveness_walk_min_population: float = 0.0
    beta_mu_mean: dict[str, float] = field(default_factory=dict)
    beta_mu_sd: dict[str, float] = field(default_factory=dict)
    beta_sigma_sd: dict[str, float] = field(default_factory=dict)
    priors: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FertilitySpec:
    """A vital-deviation submodel (fertility or mortality share the form)."""

    enabled: bool = True
    likelihood: str = "negative_binomial"
    year_drift: bool = False
    parameterization: str = "auto"
    priors: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    """A complete model specification.

    Attributes
    ----------
    name, description
        Identification.
    migration
        The migration submodel.
    fertility, mortality
        The vital-deviation submodels (same form).
    """

    name: str
    description: str
    migration: MigrationSpec
    fertility: FertilitySpec
    mortality: FertilitySpec

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as plain data (round-trips through :func:`spec_from_dict`)."""
        raw = asdict(self)
        migration = raw["migration"]
        priors = dict(migration.pop("priors"))
        for table in _MIGRATION_PRIOR_TABLES:
            priors[table] = migration.pop(table)
        migration["priors"] = priors
        migration["covariates"] = list(migration["covariates"])
        migration["attractiveness"] = list(migration["attractiveness"])
        for section in ("fertility", "mortality"):
            if raw[section]["likelihood"] == "poisson":
                raw[section]["priors"].pop("alpha_sd", None)
        if migration["regional_shocks"] == "none":
            # Left out when off, so specs and fits from before the option keep their hash.
            del migration["regional_shocks"]
            priors.pop("regional_sigma_sd")
        if not migration["attractiveness_walk"]:
            del migration["attractiveness_walk"]
            priors.pop("attract_walk_sigma_sd")
            priors.pop("attract_walk_slope_sd")
        if not migration["attractiveness_walk_min_population"]:
            del migration["attractiveness_walk_min_population"]
        return raw

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), stored with every fit."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical JSON: identifies the spec in saved fits."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def with_covariates(self, covariates: tuple[str, ...]) -> ModelSpec:
        """Return a copy with another covariate list (priors are kept per name)."""
        raw = self.to_dict()
        raw["migration"]["covariates"] = list(covariates)
        return spec_from_dict(raw, source=f"{self.name} (covariates changed)")


def default_spec_path(name: str = "vareide2022") -> Path:
    """Path of a spec shipped in the project's ``models/`` folder.

    Parameters
    ----------
    name
        File stem, e.g. ``"vareide2022"`` or ``"no_jobs"``.
    """
    path = Path(__file__).resolve().parents[3] / "models" / f"{name}.toml"
    if not path.exists():
        raise FileNotFoundError(
            f"model spec {path} not found; pass the path of a spec file "
            "(see models/vareide2022.toml in the vekst repository)."
        )
    return path


def load_spec(path: str | Path | None = None) -> ModelSpec:
    """Read and validate a model spec from a TOML file.

    Parameters
    ----------
    path
        A ``.toml`` file, a shipped spec's name (``"no_jobs"``), or ``None`` for the
        default ``models/vareide2022.toml``.

    Returns
    -------
    ModelSpec

    Raises
    ------
    SpecError
        Listing every unknown key, invalid value and impossible combination at once.
    """
    if path is None:
        path = default_spec_path()
    elif not str(path).endswith(".toml") and not Path(path).exists():
        path = default_spec_path(str(path))
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise SpecError(str(path), [f"not valid TOML: {error}"]) from error
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(
            f"model spec {path} cannot be read ({getattr(error, 'strerror', None) or error}); "
            "give the path of a .toml spec such as models/vareide2022.toml."
        ) from error
    return spec_from_dict(raw, source=str(path))


def spec_from_dict(raw: dict[str, Any], *, source: str = "spec") -> ModelSpec:
    """Build a :class:`ModelSpec` from plain data, collecting every problem.

    Parameters
    ----------
    raw
        The parsed TOML (or :meth:`ModelSpec.to_dict` output).
    source
        Name used in the error message.
    """
    raw = copy.deepcopy(raw)
    problems: list[str] = []
    _unknown(raw, _TOP_KEYS, "top level", problems)
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        problems.append("'name' must be a non-empty string")
        name = "unnamed"
    migration = _parse_migration(raw.get("migration"), problems)
    fertility = _parse_vital(raw.get("fertility", {}), "fertility", problems)
    mortality = _parse_vital(raw.get("mortality", {}), "mortality", problems)
    if problems:
        raise SpecError(source, problems)
    return ModelSpec(
        name=name,
        description=str(raw.get("description", "")),
        migration=migration,
        fertility=fertility,
        mortality=mortality,
    )


def _is_number(value: Any) -> bool:
    """A finite int or float; TOML's true/false are not numbers here."""
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    )


def _flag(raw: dict, key: str, default: bool, where: str, problems: list[str]) -> bool:
    """A true/false setting; strings such as "false" are refused, not read as true."""
    value = raw.get(key, default)
    if not isinstance(value, bool):
        problems.append(f"{where} {key} must be true or false (unquoted), not {value!r}")
        return default
    return value


def _table(raw: dict, key: str, where: str, problems: list[str]) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        problems.append(f"{where} must be a table, not {value!r}")
        return {}
    return value


def _unknown(table: dict, allowed: set[str], where: str, problems: list[str]) -> None:
    for key in sorted(set(table) - allowed):
        problems.append(f"unknown key '{key}' in {where} (allowed: {', '.join(sorted(allowed))})")


def _parse_migration(raw: Any, problems: list[str]) -> MigrationSpec:
    if not isinstance(raw, dict):
        problems.append("a [migration] table is required")
        return MigrationSpec(covariates=())
    _unknown(raw, _MIGRATION_KEYS, "[migration]", problems)
    covariates = raw.get("covariates", [])
    if not isinstance(covariates, list):
        problems.append("[migration] covariates must be a list")
        covariates = []
    if not covariates:
        problems.append(
            f"[migration] covariates is empty; list at least one of {', '.join(KNOWN_COVARIATES)}"
        )
    for cov in covariates:
        if not isinstance(cov, str):
            problems.append(f"[migration] covariate {cov!r} must be a quoted name")
            continue
        if cov not in KNOWN_COVARIATES:
            problems.append(
                f"[migration] unknown covariate '{cov}' (known: {', '.join(KNOWN_COVARIATES)})"
            )
    covariates = [c for c in covariates if isinstance(c, str)]
    if len(set(covariates)) != len(covariates):
        problems.append("[migration] covariates are listed twice")
    lags = sorted(int(c[-1]) for c in covariates if c.startswith("vra_"))
    if lags and lags != list(range(lags[-1] + 1)):
        problems.append(
            f"[migration] VRA lags {lags} skip a lag: the model uses consecutive lags from 0"
        )
    likelihood = raw.get("likelihood", "student_t")
    if likelihood not in LIKELIHOODS_MIGRATION:
        problems.append(
            f"[migration] likelihood '{likelihood}' is not one of {LIKELIHOODS_MIGRATION}"
        )
    nu = raw.get("student_t_nu", 5.0)
    if not _is_number(nu) or nu <= 1:
        problems.append("[migration] student_t_nu must be a number above 1")
    elif likelihood == "normal" and "student_t_nu" in raw:
        problems.append("[migration] student_t_nu is set but the likelihood is 'normal'")
    year_coefficients = raw.get("year_coefficients", "non_centered")
    if year_coefficients not in YEAR_COEFFICIENTS:
        problems.append(
            f"[migration] year_coefficients '{year_coefficients}' is not one of {YEAR_COEFFICIENTS}"
        )
    exchangeable = _covariate_list(raw, "year_coefficients_exchangeable", covariates, problems)
    levels = raw.get("attractiveness", ["region", "municipality"])
    if not isinstance(levels, list) or any(level not in ATTRACTIVENESS_LEVELS for level in levels):
        problems.append(
            f"[migration] attractiveness must list levels among {ATTRACTIVENESS_LEVELS}"
        )
        levels = ["region", "municipality"]
    if "municipality" not in levels:
        problems.append(
            "[migration] attractiveness must include 'municipality' (it is the residual "
            "the model ranks places by)"
        )
    if "county" in levels and "region" not in levels:
        problems.append(
            "[migration] a 'county' attractiveness level needs the 'region' level below it"
        )
    centred = raw.get("attractiveness_centered", "auto")
    if centred not in (True, False, "auto", "partial"):
        problems.append(
            '[migration] attractiveness_centered must be true, false, "auto" or "partial"'
        )
        centred = "auto"
    drift = _flag(raw, "attractiveness_drift", False, "[migration]", problems)
    orthogonal = _covariate_list(raw, "attractiveness_orthogonal_to", covariates, problems)
    loading_orthogonal = _covariate_list(raw, "loading_orthogonal_to", covariates, problems)
    time = _parse_time_structure(raw, problems)
    if drift and time["attractiveness_walk"]:
        problems.append(
            "[migration] attractiveness_drift (a straight-line trend) and attractiveness_walk "
            "(a random walk) both move attractiveness over time; choose one"
        )
    priors_raw = _table(raw, "priors", "[migration.priors]", problems)
    allowed_priors = set(_MIGRATION_PRIOR_SCALARS) | set(_MIGRATION_PRIOR_TABLES)
    _unknown(priors_raw, allowed_priors, "[migration.priors]", problems)
    tables: dict[str, dict[str, float]] = {}
    for table in _MIGRATION_PRIOR_TABLES:
        values = priors_raw.get(table, {})
        tables[table] = {}
        if not isinstance(values, dict):
            problems.append(f"[migration.priors] {table} must be a table of covariate = number")
            values = {}
        for cov in covariates:
            if cov not in values:
                problems.append(f"[migration.priors] {table} has no value for '{cov}'")
            elif not _is_number(values[cov]):
                problems.append(
                    f"[migration.priors] {table}.{cov} must be a finite number, "
                    f"not {values[cov]!r}"
                )
            elif table != "beta_mu_mean" and not values[cov] > 0:
                problems.append(f"[migration.priors] {table}.{cov} must be positive")
            else:
                tables[table][cov] = float(values[cov])
        for extra in sorted(set(values) - set(covariates)):
            problems.append(
                f"[migration.priors] {table} names '{extra}', which is not among the covariates"
            )
    scalars = dict(_MIGRATION_PRIOR_SCALARS)
    for key in _MIGRATION_PRIOR_SCALARS:
        if key in priors_raw:
            value = priors_raw[key]
            if not _is_number(value) or value <= 0:
                problems.append(
                    f"[migration.priors] {key} must be a positive finite number, not {value!r}"
                )
            else:
                scalars[key] = float(value)
    return MigrationSpec(
        covariates=tuple(covariates),
        likelihood=likelihood,
        student_t_nu=float(nu) if _is_number(nu) else 5.0,
        year_coefficients=year_coefficients,
        year_coefficients_exchangeable=tuple(exchangeable),
        attractiveness=tuple(levels),
        attractiveness_drift=bool(drift),
        attractiveness_centered=centred,
        attractiveness_orthogonal_to=tuple(orthogonal),
        loading_orthogonal_to=tuple(loading_orthogonal),
        **time,
        beta_mu_mean=tables["beta_mu_mean"],
        beta_mu_sd=tables["beta_mu_sd"],
        beta_sigma_sd=tables["beta_sigma_sd"],
        priors=scalars,
    )


def _covariate_list(raw: dict, key: str, covariates: list, problems: list[str]) -> list[str]:
    """The ``[migration]`` option ``key``: a list of the model's covariates (default none)."""
    names = raw.get(key, [])
    if not isinstance(names, list | tuple) or any(n not in covariates for n in names):
        problems.append(
            f"[migration] {key} must list covariates of the model "
            f"(among {list(covariates)}), not {names!r}"
        )
        return []
    return list(names)


def _parse_time_structure(raw: dict, problems: list[str]) -> dict[str, Any]:
    """The migration equation's time structure: ``iid`` year effects and coefficients, or
    ``ar1`` (a stationary VAR(1) with correlated innovations), national net immigration
    as a driver with municipal loadings, and persistent municipal deviations."""
    out: dict[str, Any] = {}
    structure = raw.get("time_structure", "iid")
    if structure not in TIME_STRUCTURES:
        problems.append(f"[migration] time_structure '{structure}' is not one of {TIME_STRUCTURES}")
        structure = "iid"
    out["time_structure"] = structure
    innovations = raw.get("innovations", "normal")
    if innovations not in INNOVATIONS:
        problems.append(f"[migration] innovations '{innovations}' is not one of {INNOVATIONS}")
        innovations = "normal"
    out["innovations"] = innovations
    nu = raw.get("innovations_nu", 4.0)
    if isinstance(nu, bool) or not isinstance(nu, int | float) or not 2 < nu < 1e6:
        problems.append("[migration] innovations_nu must be a number above 2")
        nu = 4.0
    out["innovations_nu"] = float(nu)
    for key in ("national_immigration", "local_persistence", "attractiveness_walk"):
        value = raw.get(key, False)
        if not isinstance(value, bool):
            problems.append(f"[migration] {key} must be true or false (without quotes)")
            value = False
        if value and structure != "ar1":
            problems.append(f'[migration] {key} needs time_structure = "ar1"')
        out[key] = value
    floor = raw.get("attractiveness_walk_min_population", 0.0)
    if isinstance(floor, bool) or not isinstance(floor, int | float) or not 0 <= floor < 1e9:
        problems.append(
            "[migration] attractiveness_walk_min_population must be a number of people, 0 or more"
        )
        floor = 0.0
    elif floor > 0 and not out["attractiveness_walk"]:
        problems.append(
            "[migration] attractiveness_walk_min_population only applies with "
            "attractiveness_walk = true"
        )
    out["attractiveness_walk_min_population"] = float(floor)
    regional = raw.get("regional_shocks", "none")
    if regional not in REGIONAL_SHOCKS:
        problems.append(f"[migration] regional_shocks '{regional}' is not one of {REGIONAL_SHOCKS}")
        regional = "none"
    if regional != "none" and structure != "ar1":
        problems.append('[migration] regional_shocks needs time_structure = "ar1"')
    out["regional_shocks"] = regional
    return out


def _parse_vital(raw: Any, section: str, problems: list[str]) -> FertilitySpec:
    if not isinstance(raw, dict):
        problems.append(f"[{section}] must be a table")
        return FertilitySpec(enabled=False)
    _unknown(raw, _VITAL_KEYS, f"[{section}]", problems)
    likelihood = raw.get("likelihood", "negative_binomial")
    if likelihood not in LIKELIHOODS_VITAL:
        problems.append(f"[{section}] likelihood '{likelihood}' is not one of {LIKELIHOODS_VITAL}")
    parameterization = raw.get("parameterization", "auto")
    if parameterization not in ("auto", "centered", "non_centered"):
        problems.append(
            f"[{section}] parameterization '{parameterization}' is not 'auto', 'centered' "
            "or 'non_centered'"
        )
    priors_raw = _table(raw, "priors", f"[{section}.priors]", problems)
    _unknown(priors_raw, set(_VITAL_PRIOR_SCALARS), f"[{section}.priors]", problems)
    priors = dict(_VITAL_PRIOR_SCALARS)
    for key in _VITAL_PRIOR_SCALARS:
        if key in priors_raw:
            value = priors_raw[key]
            if not _is_number(value) or value <= 0:
                problems.append(
                    f"[{section}.priors] {key} must be a positive finite number, not {value!r}"
                )
            else:
                priors[key] = float(value)
    if likelihood == "poisson" and "alpha_sd" in priors_raw:
        problems.append(f"[{section}.priors] alpha_sd is set but the likelihood is 'poisson'")
    return FertilitySpec(
        enabled=_flag(raw, "enabled", True, f"[{section}]", problems),
        likelihood=likelihood,
        year_drift=_flag(raw, "year_drift", False, f"[{section}]", problems),
        parameterization=parameterization,
        priors=priors,
    )
