"""The HTML report from small synthetic inputs: sections, figures, captions, the gate banner."""

import base64
import json
import re

import arviz as az
import numpy as np
import pytest
import xarray as xr

from vekst.decompose import COMPONENTS
from vekst.models.data import MigrationData
from vekst.models.ols import fit_ols
from vekst.report.html import ReportInputError, default_municipalities, write_report

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


@pytest.fixture(scope="module")
def panel():
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


@pytest.fixture(scope="module")
def inputs(panel):
    rng = np.random.default_rng(SEED)
    migration = _migration_data(rng)
    return {
        "panel": panel,
        "idata": _idata(rng, migration, PASSED),
        "ols": fit_ols(migration),
        "projection": _projection(panel, rng),
        "decomposition": _decomposition(rng),
    }


@pytest.fixture(scope="module")
def report(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    # A low resolution keeps the test fast; the layout is the same.
    index = write_report(out, municipalities=["4621"], dpi=40, **inputs)
    return out, index.read_text(encoding="utf-8")


def _ids(html):
    return set(re.findall(r'\bid="([^"]+)"', html))


def _img_sources(html):
    return re.findall(r'<img\b[^>]*\bsrc="([^"]*)"', html)


def test_default_municipalities_are_the_three_largest_then_the_chosen(inputs):
    chosen = default_municipalities(inputs["panel"], inputs["projection"], ["4621", "0301"])
    assert chosen == [*LARGEST, "4621"]
    with pytest.raises(ReportInputError, match="9999"):
        default_municipalities(inputs["panel"], inputs["projection"], ["9999"])


def test_report_has_every_section(report):
    _, html = report
    expected = {
        "national",
        "counties",
        "attractiveness",
        "coefficients",
        "diagnostics",
        "sources",
    } | {f"municipality-{c}" for c in [*LARGEST, "4621"]}
    assert expected <= _ids(html)
    assert "municipality-1103" not in _ids(html)
    # Sections appear in the documented order.
    order = [
        html.index(f'id="{i}"')
        for i in [
            "national",
            "municipality-0301",
            "attractiveness",
            "coefficients",
            "diagnostics",
            "sources",
        ]
    ]
    assert order == sorted(order)


def test_report_figures_are_embedded_and_written(report):
    out, html = report
    sources = _img_sources(html)
    # national + counties; per municipality fan, pyramids 2030 and 2040, drivers (x4);
    # two rankings; coefficients.
    assert len(sources) == 2 + 4 * 4 + 2 + 1
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert base64.b64decode(sources[0].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((out / "figures").glob("*.png"))) == len(sources)
    assert (out / "tables" / "age_groups_4621.csv").is_file()
    assert (out / "tables" / "attractiveness_municipalities.csv").is_file()


def test_report_is_self_contained(report):
    _, html = report
    assert "http://" not in html and "https://" not in html
    assert not re.search(r'(src|href)="(?!data:|#)', html)
    assert "<script" not in html and "<link" not in html


def test_report_captions_explain_the_figures(report):
    _, html = report
    for phrase in (
        "middle 50 %",  # fan chart bands
        "Men to the left, women to the right",  # pyramid
        "80 % interval",  # age-group table
        "Attractiveness (bostedsattraktivitet)",
        "P(top 10)",
        "year-by-year",
        "R-hat compares",
        "Statistisk sentralbyrå",
        "Human Mortality Database",
        "Human Fertility Database",
        "CC BY 4.0",
        "synthetic test panel",  # the panel's own attrs
    ):
        assert phrase in html, phrase
    assert "Convergence gate passed" in html
    assert 'id="gate-warning"' not in html
    # The age-group table of the chosen municipality lists planning groups by year.
    section = html[html.index('id="municipality-4621"') : html.index('id="attractiveness"')]
    assert "6-12" in section and "2040" in section and "Total" in section


def test_failed_gate_shows_the_warning_banner(inputs, tmp_path):
    rng = np.random.default_rng(SEED + 1)
    idata = _idata(rng, _migration_data(rng), FAILED)
    projection = _projection(inputs["panel"], rng, full=False)
    projection.attrs["allow_unconverged"] = 1
    index = write_report(
        tmp_path, panel=inputs["panel"], idata=idata, ols=None, projection=projection, dpi=40
    )
    html = index.read_text(encoding="utf-8")
    assert 'id="gate-warning"' in html
    banner = html[html.index('id="gate-warning"') :]
    banner = banner[: banner.index("</div>")]
    assert "did not pass the convergence gate" in banner and "overridden" in banner
    assert "12 divergent transitions" in banner
    assert "FAIL" in html
    # Totals only: fan charts and rankings, no pyramids, a note saying why.
    assert len(_img_sources(html)) == 2 + 3 + 2 + 1
    assert "age groups only" not in html and "totals only" in html


def test_report_command_writes_the_report(inputs, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import vekst
    from vekst.cli import app
    from vekst.fit import save_fit

    fit_path = save_fit(inputs["idata"], tmp_path / "fit.nc")
    projection_dir = tmp_path / "projection"
    projection_dir.mkdir()
    projection = inputs["projection"].drop_vars("population")
    projection.to_netcdf(projection_dir / "projection.nc", engine="h5netcdf")
    monkeypatch.setattr(vekst, "load_default", lambda: inputs["panel"])
    # The stand-in fit was not made on any panel: skip the fit-panel identity check here
    # (tests/test_fit.py tests it).
    monkeypatch.setattr("vekst.fit.check_fit_panel", lambda fit, panel: None)
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        [
            "report",
            "--fit",
            str(fit_path),
            "--projection",
            str(projection_dir),
            "--out",
            str(out),
            "-m",
            "5007",
            "--no-decompose",
        ],
    )
    assert result.exit_code == 0, result.output
    html = (out / "index.html").read_text(encoding="utf-8")
    assert 'id="municipality-5007"' in html and 'id="coefficients"' in html
    # The OLS baseline was recomputed from the fit's data: its column is in the table.
    assert "OLS pooled" in html

    missing = CliRunner().invoke(
        app,
        [
            "report",
            "--fit",
            str(fit_path),
            "--projection",
            str(tmp_path / "nowhere"),
            "--out",
            str(out),
        ],
    )
    assert missing.exit_code == 2
    assert "vekst project" in missing.output
