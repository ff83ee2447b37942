"""Model-ready arrays: the bridge between the panel's features and the model builders.

The builders never read the panel. They take a :class:`MigrationData` (and
:class:`VitalData`), which hold numpy arrays on the balanced municipality x year grid
(the layout that makes gradients cheap, see the performance notes) plus the labels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from vekst.errors import PanelError
from vekst.models.spec import ModelSpec

__all__ = ["MigrationData", "VitalData", "data_hash", "migration_data", "vital_data"]


class ModelDataError(PanelError):
    """The data cannot feed the model; the message says which variable and what to do."""


@dataclass(frozen=True)
class MigrationData:
    """Arrays for the migration model on the municipality x year grid.

    Attributes
    ----------
    municipalities, years, covariates
        Labels of the grid.
    regions, counties
        Region and county label of each municipality.
    names
        Municipality names.
    rate
        Net migration in % of the 1 January population, (municipality, year); NaN where
        not observed.
    x
        Covariates, (covariate, municipality, year), 0 where missing.
    x_available
        Boolean (covariate, municipality, year): where a covariate was observed. A term
        is switched off (contributes 0) where it is missing, so years without job data
        still inform the year effects, centrality, DS and attractiveness.
    population
        1 January population, (municipality, year).
    centers
        Values subtracted from raw features (``centrality_center``, ``ds_center``).
    national
        National net migration in % of the national population per year, when known
        apart from the municipal rates (simulations); default: computed from them.
    """

    municipalities: np.ndarray
    years: np.ndarray
    covariates: tuple[str, ...]
    regions: np.ndarray
    counties: np.ndarray
    names: np.ndarray
    rate: np.ndarray
    x: np.ndarray
    x_available: np.ndarray
    population: np.ndarray
    centers: dict[str, float] = field(default_factory=dict)
    national: np.ndarray | None = None

    @property
    def national_rate(self) -> np.ndarray:
        """National net migration in % of the national population, ``(year,)``.

        The population-weighted mean of the observed municipal rates, i.e. national net
        immigration over the national population when every municipality is observed.
        """
        if self.national is not None:
            return np.asarray(self.national, dtype=float)
        observed = self.observed
        weights = np.where(observed, self.population, 0.0)
        persons = np.where(observed, self.rate, 0.0) * weights
        with np.errstate(invalid="ignore", divide="ignore"):
            return persons.sum(axis=0) / weights.sum(axis=0)

    @property
    def observed(self) -> np.ndarray:
        """Boolean (municipality, year): where the net migration rate is observed."""
        return np.isfinite(self.rate)

    def coords(self) -> dict[str, list]:
        """PyMC coords for the grid."""
        return {
            "municipality": [str(m) for m in self.municipalities],
            "year": [int(y) for y in self.years],
            "covariate": list(self.covariates),
            "region": sorted({str(r) for r in self.regions}),
            "county": sorted({str(c) for c in self.counties}),
        }

    def region_index(self) -> np.ndarray:
        """Index of each municipality's region in ``coords()['region']``."""
        regions = self.coords()["region"]
        lookup = {r: i for i, r in enumerate(regions)}
        return np.array([lookup[str(r)] for r in self.regions])

    def county_index(self) -> np.ndarray:
        """Index of each municipality's county in ``coords()['county']``."""
        counties = self.coords()["county"]
        lookup = {c: i for i, c in enumerate(counties)}
        return np.array([lookup[str(c)] for c in self.counties])

    def hash(self) -> str:
        """Hash of the numbers the model sees (stored with fits, checked on load)."""
        digest = hashlib.sha256()
        for array in (self.rate, self.x, self.population):
            digest.update(np.nan_to_num(np.asarray(array, dtype=np.float64)).tobytes())
        digest.update(",".join(map(str, self.municipalities)).encode())
        digest.update(",".join(map(str, self.years)).encode())
        if self.national is not None:
            digest.update(np.asarray(self.national, dtype=np.float64).tobytes())
        return digest.hexdigest()[:16]

    def to_dataset(self) -> xr.Dataset:
        """The arrays as a labelled dataset (stored in a fit's ``constant_data``)."""
        coords = {
            "municipality": [str(m) for m in self.municipalities],
            "year": [int(y) for y in self.years],
            "covariate": list(self.covariates),
        }
        return xr.Dataset(
            {
                "net_migration_rate": (("municipality", "year"), self.rate),
                "x": (("covariate", "municipality", "year"), self.x),
                "x_available": (("covariate", "municipality", "year"), self.x_available),
                "population": (("municipality", "year"), self.population),
                "national_rate": (("year",), self.national_rate),
            },
            coords={
                **coords,
                "region": ("municipality", [str(r) for r in self.regions]),
                "county": ("municipality", [str(c) for c in self.counties]),
                "name": ("municipality", [str(n) for n in self.names]),
            },
            attrs={f"{k}": float(v) for k, v in self.centers.items()},
        )

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> MigrationData:
        """Inverse of :meth:`to_dataset`."""
        return cls(
            municipalities=ds["municipality"].values.astype(str),
            years=ds["year"].values.astype(int),
            covariates=tuple(str(c) for c in ds["covariate"].values),
            regions=ds["region"].values.astype(str),
            counties=ds["county"].values.astype(str),
            names=ds["name"].values.astype(str),
            rate=ds["net_migration_rate"].values.astype(float),
            x=ds["x"].values.astype(float),
            x_available=ds["x_available"].values.astype(bool),
            population=ds["population"].values.astype(float),
            centers={k: float(v) for k, v in ds.attrs.items()},
            national=ds["national_rate"].values.astype(float) if "national_rate" in ds else None,
        )


@dataclass(frozen=True)
class VitalData:
    """Observed and expected events (births or deaths) on the municipality x year grid."""

    municipalities: np.ndarray
    years: np.ndarray
    regions: np.ndarray
    observed: np.ndarray
    expected: np.ndarray
    kind: str

    def region_index(self) -> np.ndarray:
        """Index of each municipality's region in the sorted region labels."""
        regions = sorted({str(r) for r in self.regions})
        lookup = {r: i for i, r in enumerate(regions)}
        return np.array([lookup[str(r)] for r in self.regions])


def data_hash(*parts: MigrationData | VitalData | None) -> str:
    """Combined hash of the data behind a fit."""
    digest = hashlib.sha256()
    for part in parts:
        if part is None:
            continue
        if isinstance(part, MigrationData):
            digest.update(part.hash().encode())
        else:
            for array in (part.observed, part.expected):
                digest.update(np.nan_to_num(np.asarray(array, dtype=np.float64)).tobytes())
    return digest.hexdigest()[:16]


def _source(panel: xr.Dataset) -> str:
    """The panel's file name where it was read from one, for error messages."""
    return str(panel.encoding.get("source") or panel.attrs.get("title") or "panel")


def migration_data(
    panel: xr.Dataset,
    spec: ModelSpec,
    *,
    years: tuple[int, int] | None = None,
    employment_rate: xr.DataArray | None = None,
) -> MigrationData:
    """Compute the migration model's arrays from a panel.

    Parameters
    ----------
    panel
        A validated panel with ``net_migration_total`` (observed or derived).
    spec
        The model spec (its covariates are computed).
    years
        Inclusive (first, last) calendar years of net migration to use; default all years
        with net migration.
    employment_rate
        National employment rates by age and sex for DS; estimated when omitted.

    Returns
    -------
    MigrationData
    """
    from vekst.data.panel import validate_panel
    from vekst.features import design_matrix, net_migration_rate

    # Every public entry point validates: duplicate codes or negative counts must not fit.
    validate_panel(panel, code_vintage="auto", source=_source(panel))
    if "net_migration_total" not in panel:
        raise ModelDataError(
            "the panel has no 'net_migration_total'; derive it with "
            "vekst.data.components.residual_net_migration or fetch observed components "
            "with `vekst fetch`."
        )
    rate = net_migration_rate(panel)
    has_rate = rate.notnull().any("municipality")
    rate = rate.sel(year=rate["year"].values[np.asarray(has_rate.values)])
    if years is not None:
        rate = rate.sel(year=slice(years[0], years[1]))
    if rate.sizes["year"] == 0:
        raise ModelDataError(f"no year with net migration in the range {years}")
    covariates = spec.migration.covariates
    if covariates:
        x = design_matrix(panel, covariates=covariates, employment_rate=employment_rate)
        x = x.sel(year=rate["year"]).transpose("covariate", "municipality", "year")
        keys = ("centrality_center", "ds_center", "housing_center")
        centers = {key: float(x.attrs[key]) for key in keys if key in x.attrs}
        x_values = np.asarray(x.values, dtype=float)
    else:
        x_values = np.zeros((0, rate.sizes["municipality"], rate.sizes["year"]))
        centers = {}
    available = np.isfinite(x_values)
    population = panel["population"].sum(("age", "sex")).sel(year=rate["year"])
    return MigrationData(
        municipalities=panel["municipality"].values.astype(str),
        years=rate["year"].values.astype(int),
        covariates=tuple(covariates),
        regions=panel["region"].values.astype(str),
        counties=panel["county"].values.astype(str),
        names=panel["name"].values.astype(str),
        rate=np.asarray(rate.transpose("municipality", "year").values, dtype=float),
        x=np.where(available, x_values, 0.0),
        x_available=available,
        population=np.asarray(population.transpose("municipality", "year").values, dtype=float),
        centers=centers,
    )


def vital_data(panel: xr.Dataset, kind: str) -> VitalData | None:
    """Observed and expected births or deaths, or ``None`` when none are observed.

    Parameters
    ----------
    panel
        A validated panel.
    kind
        ``"births"`` or ``"deaths"``.
    """
    from vekst.data.panel import validate_panel
    from vekst.features import expected_births, expected_deaths

    if kind not in ("births", "deaths"):
        raise ValueError(f"kind must be 'births' or 'deaths', not {kind!r}")
    validate_panel(panel, code_vintage="auto", source=_source(panel))
    if kind not in panel or not bool(panel[kind].notnull().any()):
        return None
    expected = expected_births(panel) if kind == "births" else expected_deaths(panel)
    observed = panel[kind]
    both = observed.notnull() & expected.notnull()
    keep = np.asarray(both.all("municipality").values)
    years = panel["year"].values[keep]
    if years.size == 0:
        return None
    observed = observed.sel(year=years).transpose("municipality", "year")
    expected = expected.sel(year=years).transpose("municipality", "year")
    return VitalData(
        municipalities=panel["municipality"].values.astype(str),
        years=years.astype(int),
        regions=panel["region"].values.astype(str),
        observed=np.rint(np.asarray(observed.values, dtype=float)),
        expected=np.asarray(expected.values, dtype=float),
        kind=kind,
    )
