"""Small synthetic inputs of the HTML report, shared by the report and browser tests."""

import json

import arviz as az
import numpy as np
import xarray as xr

from vekst.decompose import COMPONENTS
from vekst.models.data import MigrationData
from vekst.models.ols import fit_ols

CODES = [
    "0301",
    "1103",
    "1106",
    "3201",
    "3203",
    "3205",
    "4601",
    "4602",
    "4621",
    "5001",
    "5006",
    "5007",
]
SIZES = [60_000, 9_000, 3_000, 30_000, 8_000, 2_000, 40_000, 7_000, 1_000, 5_000, 4_000, 600]
LARGEST = ["0301", "4601", "3201"]
REGIONS = ["R1", "R1", "R2", "R3", "R3", "R3", "R4", "R4", "R4", "R5", "R5", "R5"]
COVARIATES = ["vra_0", "centrality", "ds"]
HIST_YEARS = np.arange(2015, 2023)
FIT_YEARS = np.arange(2016, 2022)
PROJ_YEARS = np.arange(2022, 2041)
AGES = np.arange(106)
SEED = 11


def _age_profile():
    return np.where(AGES < 85, 1.0, np.exp(-(AGES - 85) / 4.0))


def make_panel():
    """A small synthetic panel: 12 municipalities in 5 regions, 2015-2022."""
    rng = np.random.default_rng(SEED)
    profile = _age_profile() / _age_profile().sum() / 2
    growth = 1.0 + 0.01 * (HIST_YEARS - HIST_YEARS[0])
    population = (
        np.array(SIZES)[:, None, None, None]
        * growth[None, :, None, None]
        * profile[None, None, :, None]
        * rng.uniform(0.9, 1.1, (len(CODES), 1, 1, 2))
    )
    return xr.Dataset(
        {"population": (("municipality", "year", "age", "sex"), np.rint(population))},
        coords={
            "municipality": CODES,
            "year": HIST_YEARS,
            "age": AGES,
            "sex": ["female", "male"],
            "name": ("municipality", [f"Place {c}" for c in CODES]),
            "county": ("municipality", [c[:2] for c in CODES]),
            "county_name": ("municipality", [f"County {c[:2]}" for c in CODES]),
            "region": ("municipality", REGIONS),
            "region_name": ("municipality", [f"Region {r}" for r in REGIONS]),
        },
        attrs={
            "title": "synthetic test panel",
            "sources": "Statistics Norway (SSB) table 07459 (synthetic copy for tests)",
            "licence": "NLOD 2.0 / CC BY 4.0; attribution 'Statistisk sentralbyrå'",
        },
    )


def _migration_data(rng):
    n_m, n_y = len(CODES), len(FIT_YEARS)
    x = rng.normal(0, 1, (len(COVARIATES), n_m, n_y))
    rate = 0.2 * x[0] + 1.5 * x[1] - 0.4 * x[2] + rng.normal(0, 0.3, (n_m, n_y))
    return MigrationData(
        municipalities=np.array(CODES),
        years=FIT_YEARS,
        covariates=tuple(COVARIATES),
        regions=np.array(REGIONS),
        counties=np.array([c[:2] for c in CODES]),
        names=np.array([f"Place {c}" for c in CODES]),
        rate=rate,
        x=x,
        x_available=np.ones_like(x, dtype=bool),
        population=np.tile(np.array(SIZES, dtype=float)[:, None], (1, n_y)),
        centers={"centrality_center": 0.0, "ds_center": 0.0},
    )


def _idata(rng, migration, diagnostics):
    from vekst import __version__
    from vekst.models.spec import load_spec

    chains, draws = 2, 50
    n_cov, n_y = len(COVARIATES), len(FIT_YEARS)
    regions = sorted(set(REGIONS))
    beta_mu = np.array([0.15, 2.0, -0.4]) + 0.05 * rng.normal(size=(chains, draws, n_cov))
    idata = az.from_dict(
        posterior={
            "beta_mu": beta_mu,
            "beta_sigma": np.abs(0.05 * rng.normal(size=(chains, draws, n_cov))),
            "beta_year": beta_mu[..., None] + 0.05 * rng.normal(size=(chains, draws, n_cov, n_y)),
            "year_effect": 0.3 + 0.1 * rng.normal(size=(chains, draws, n_y)),
            "attractiveness": rng.normal(0, 0.4, len(CODES))
            + 0.1 * rng.normal(size=(chains, draws, len(CODES))),
            "attract_region": rng.normal(0, 0.2, len(regions))
            + 0.05 * rng.normal(size=(chains, draws, len(regions))),
            "sigma_base": np.abs(0.3 + 0.01 * rng.normal(size=(chains, draws))),
            "sigma_pop": np.abs(1.0 + 0.01 * rng.normal(size=(chains, draws))),
        },
        sample_stats={
            "diverging": np.zeros((chains, draws), dtype=bool),
            "energy": rng.normal(size=(chains, draws)),
        },
        coords={
            "covariate": COVARIATES,
            "year": FIT_YEARS,
            "municipality": CODES,
            "region": regions,
        },
        dims={
            "beta_mu": ["covariate"],
            "beta_sigma": ["covariate"],
            "beta_year": ["covariate", "year"],
            "year_effect": ["year"],
            "attractiveness": ["municipality"],
            "attract_region": ["region"],
        },
    )
    spec = load_spec()
    idata.add_groups({"fit_data": migration.to_dataset()})
    idata.attrs.update(
        {
            "spec": spec.to_json(),
            "spec_hash": spec.hash,
            "data_hash": "synthetic",
            "vekst_version": __version__,
            "covariates": json.dumps(COVARIATES),
            "sampler": "nutpie",
            "seed": SEED,
            "diagnostics": json.dumps(diagnostics),
        }
    )
    return idata


PASSED = {
    "rhat_max": 1.003,
    "ess_bulk_min": 850.0,
    "ess_tail_min": 700.0,
    "divergences": 0,
    "bfmi_min": 0.9,
    "worst": {"rhat": "beta_year", "ess_bulk": "sigma_pop"},
    "problems": [],
    "converged": True,
}
FAILED = {
    **PASSED,
    "rhat_max": 1.08,
    "divergences": 12,
    "converged": False,
    "problems": ["R-hat 1.080 > 1.01 for 'beta_year'", "12 divergent transitions"],
}


def _projection(panel, rng, *, full=True):
    n_draw = 30
    base = panel["population"].sel(year=2022).transpose("municipality", "age", "sex").values
    trend = np.exp(
        np.cumsum(rng.normal(0.005, 0.01, (n_draw, len(PROJ_YEARS), len(CODES))), axis=1)
    )
    trend[:, 0] = 1.0
    population = (trend[..., None, None] * base[None, None]).astype(np.float32)
    coords = {
        "draw": np.arange(n_draw),
        "year": PROJ_YEARS,
        "municipality": CODES,
        "age": AGES,
        "sex": ["female", "male"],
    }
    for name in ("name", "county", "region", "region_name"):
        coords[name] = ("municipality", panel[name].values)
    flows = np.zeros((n_draw, len(PROJ_YEARS), len(CODES)))
    data = {
        "population_total": (("draw", "year", "municipality"), population.sum((3, 4))),
        "births": (("draw", "year", "municipality"), flows),
        "deaths": (("draw", "year", "municipality"), flows),
        "net_migration": (("draw", "year", "municipality"), flows),
    }
    if full:
        data["population"] = (("draw", "year", "municipality", "age", "sex"), population)
    return xr.Dataset(
        data,
        coords=coords,
        attrs={
            "base_year": 2022,
            "end_year": 2040,
            "scenario_name": "baseline",
            "seed": 0,
            "n_draws": n_draw,
        },
    )


def _decomposition(rng):
    components = list(COMPONENTS)
    values = rng.normal(0, 20, (40, len(components), len(CODES), len(FIT_YEARS)))
    contribution = xr.DataArray(
        values,
        dims=("draw", "component", "municipality", "year"),
        coords={"component": components, "municipality": CODES, "year": FIT_YEARS},
    )
    return xr.Dataset({"contribution": contribution, "growth": contribution.sum("component")})


def make_inputs(panel):
    """Fit, OLS, projection and decomposition matching :func:`make_panel`."""
    rng = np.random.default_rng(SEED)
    migration = _migration_data(rng)
    return {
        "panel": panel,
        "idata": _idata(rng, migration, PASSED),
        "ols": fit_ols(migration),
        "projection": _projection(panel, rng),
        "decomposition": _decomposition(rng),
    }


def make_attribution(codes, years, seed=0):
    """A variance split with known shares (Dirichlet per municipality and year)."""
    from vekst.projection.sources import SOURCES

    rng = np.random.default_rng(seed)
    share = rng.dirichlet(np.ones(len(SOURCES)), size=(len(years), len(codes)))
    variance = rng.uniform(100, 1000, size=(len(years), len(codes)))
    dims = ("year", "municipality", "source")
    coords = {"year": years, "municipality": codes, "source": list(SOURCES)}
    national_share = rng.dirichlet(np.ones(len(SOURCES)), size=len(years))
    return xr.Dataset(
        {
            "share_total": (dims, share),
            "contribution_total": (dims, share * variance[..., None]),
            "variance_total": (("year", "municipality"), variance),
            "share_national": (("year", "source"), national_share),
            "variance_national": (("year",), variance.sum(1)),
        },
        coords=coords,
    )


def with_housing(inputs):
    """The inputs with the fit's third covariate (DS) renamed to ``housing_0``."""
    import dataclasses

    renamed = ["vra_0", "centrality", "housing_0"]
    idata = inputs["idata"].copy()
    idata.posterior = idata.posterior.assign_coords(covariate=renamed)
    ols = inputs["ols"]
    ols = dataclasses.replace(
        ols,
        beta=ols.beta.assign_coords(covariate=renamed),
        beta_se=ols.beta_se.assign_coords(covariate=renamed),
        beta_year=ols.beta_year.assign_coords(covariate=renamed),
        beta_year_se=ols.beta_year_se.assign_coords(covariate=renamed),
    )
    return {**inputs, "idata": idata, "ols": ols}


def make_housing_effect(codes, planned, seed=0):
    """A plan effect as :func:`vekst.projection.housing_uplift.uplift_plan_effect` returns
    it: gains that grow over the plan years in ``planned``, nothing elsewhere."""
    rng = np.random.default_rng(seed)
    n_draw, years = 50, PROJ_YEARS
    extra = np.array([20.0 + 10 * i if c in planned else np.nan for i, c in enumerate(codes)])
    per_year = np.nan_to_num(extra)[None, :] * rng.uniform(0.1, 0.4, (n_draw, 1))
    in_plan = ((years >= 2023) & (years <= 2030)).astype(float)
    migration = in_plan[None, :, None] * per_year[:, None, :]
    population = np.concatenate(
        [np.zeros((n_draw, 1, len(codes))), np.cumsum(migration, axis=1)[:, :-1]], axis=1
    )
    migration[:, -1] = np.nan
    dims = ("draw", "year", "municipality")
    return xr.Dataset(
        {
            "population_effect": (dims, population),
            "net_migration_effect": (dims, migration),
            "extra_completions": (("municipality",), extra),
        },
        coords={"draw": np.arange(n_draw), "year": years, "municipality": codes},
        attrs={"band": 0.9, "plan_first_year": 2023, "plan_last_year": 2030, "plan_share": 0.5},
    )
