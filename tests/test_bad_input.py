"""Bad input gets a named error, never a wrong result: panels, specs, scenarios, fit
settings and the SSB client.

Each case feeds one fault and asserts the error type and that the message names the
culprit (file, municipality, year, key or option). The command line and the outputs are
covered in test_bad_input_cli.py and test_bad_input_outputs.py (docs/errors.md counts all).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from fixtures.bad_input import (  # noqa: F401 - pytest finds fixtures by name
    CODES,
    JOB_HEADER,
    Case,
    Context,
    base_panel_fixture,
    check_case,
    ctx_fixture,
    panel_file_fixture,
    spec_dict_fixture,
    write_text,
)
from fixtures.ssb.stub import FakeClock, FakeDim, FakeTable, StubTransport, json_response
from vekst.data.panel import PanelValidationError, load_panel, validate_panel
from vekst.data.ssb import (
    RateLimiter,
    Response,
    RetryPolicy,
    SsbClient,
    SsbError,
    SsbHttpError,
    TableSpecError,
    TransportError,
)
from vekst.data.ssb_tables import Content, Select, TableSpec
from vekst.errors import (
    EXIT_INPUT,
    EXIT_SOURCE,
    OutputError,
    PanelError,
    ScenarioError,
    SourceError,
    SpecError,
    UsageError,
    VekstError,
)
from vekst.fit import check_sampler_settings, fit_model
from vekst.io import check_output_file
from vekst.models.data import migration_data
from vekst.models.spec import load_spec, spec_from_dict
from vekst.projection.scenario import JobGrowth, Scenario, load_scenario

# --------------------------------------------------------------------------------------
# Panels
# --------------------------------------------------------------------------------------


def _validate(mutate: Callable[[xr.Dataset], xr.Dataset], **kwargs) -> Callable:
    def run(ctx: Context):
        kwargs.setdefault("code_vintage", "auto")
        return validate_panel(mutate(ctx.panel), source="toy.nc", **kwargs)

    return run


def _set_population(panel, municipality, year, factor=0.0, value=None):
    pop = panel["population"].copy()
    cell = pop.loc[{"municipality": municipality, "year": year}]
    where = {"municipality": municipality, "year": year}
    pop.loc[where] = cell * factor if value is None else value
    return panel.assign(population=pop)


def _recode(panel, codes):
    panel = panel.assign_coords(municipality=codes)
    if "work_municipality" in panel.dims:
        panel = panel.assign_coords(work_municipality=codes)
    return panel


def _scale_population(panel, factor, derived="no"):
    pop = panel["population"] * factor
    pop.attrs = dict(panel["population"].attrs, derived=derived)
    return panel.assign(population=pop)


def _blank(coord: str, index: int = 2):
    def mutate(panel):
        values = panel[coord].values.astype(object)
        values[index] = ""
        return panel.assign_coords({coord: ("municipality", values.astype(str))})

    return mutate


def _centrality(values):
    return lambda p: p.assign_coords(centrality=("municipality", np.asarray(values, float)))


def _commute_to(code):
    def mutate(panel):
        work = [str(c) for c in panel["work_municipality"].values]
        work[-1] = code
        return panel.assign_coords(work_municipality=work)

    return mutate


def _flow_in_last_year(panel):
    births = panel["births"].copy()
    births.loc[{"year": 2016}] = 10.0
    return panel.assign(births=births)


def _rates_per_thousand(panel):
    rate = panel["mortality_rate"] * 1000
    rate.attrs = panel["mortality_rate"].attrs
    return panel.assign(mortality_rate=rate)


def _births_times(factor):
    def mutate(panel):
        births = panel["births"] * factor
        births.attrs = dict(panel["births"].attrs, derived="yes")
        return panel.assign(births=births)

    return mutate


def _truncated_panel(ctx: Context) -> Path:
    data = ctx.panel_file.read_bytes()
    path = ctx.tmp / "cut.nc"
    path.write_bytes(data[: len(data) // 3])
    return path


PANEL_CASES = [
    Case("duplicate-codes", _validate(lambda p: _recode(p, ["3001", "3002", "3002", "3004",
                                                              "3005", "3006"])),
         PanelValidationError, ("3002", "duplicate")),
    Case("negative-population",
         _validate(lambda p: _set_population(p, "3004", 2012, value=-5.0)),
         PanelValidationError, ("3004", "2012", "negative")),
    Case("nan-population",
         _validate(lambda p: _set_population(p, "3005", 2011, value=np.nan)),
         PanelValidationError, ("3005", "2011")),
    Case("year-gap", _validate(lambda p: p.sel(year=[2010, 2011, 2012, 2014, 2015, 2016])),
         PanelValidationError, ("[2013]", "2012", "2014")),
    Case("years-out-of-order", _validate(lambda p: p.isel(year=[0, 2, 1, 3, 4, 5, 6])),
         PanelValidationError, ("2012", "2011")),
    Case("pre-2020-codes", _validate(lambda p: _recode(p, ["0101", "0104", "0105", "0106",
                                                             "0111", "0118"])),
         PanelValidationError, ("0101", "2020")),
    Case("mixed-code-vintages", _validate(lambda p: _recode(p, ["3001", "3002", "3003",
                                                                  "3101", "3103", "3105"])),
         PanelValidationError, ("3001", "3101", "vintage")),
    Case("wrong-vintage-for-2024", _validate(lambda p: p, code_vintage=2024),
         PanelValidationError, ("3001", "2024")),
    Case("bad-code-vintage-attr", _validate(lambda p: p.assign_attrs(code_vintage="new")),
         PanelValidationError, ("code_vintage", "'new'")),
    Case("population-times-1e9", _validate(lambda p: _scale_population(p, 1e9)),
         PanelValidationError, ("toy.nc", "Norway", "allow_unusual")),
    Case("population-in-thousands",
         _validate(lambda p: _scale_population(p, 1e-3, derived="yes")),
         PanelValidationError, ("thousands", "allow_unusual")),
    Case("one-municipality-too-large",
         _validate(lambda p: _set_population(p, "3003", [2015, 2016], factor=500.0)),
         PanelValidationError, ("3003", "2015")),
    Case("births-vs-population", _validate(_births_times(1000)),
         PanelValidationError, ("births", "3001", "2010")),
    Case("centrality-0-1", _validate(_centrality([0.95, 0.85, 0.75, 0.65, 0.55, 0.45])),
         PanelValidationError, ("centrality", "1000")),
    Case("centrality-negative", _validate(_centrality([950, -5, 750, 650, 550, 450])),
         PanelValidationError, ("centrality", "-5")),
    Case("zero-base-year", _validate(lambda p: _set_population(p, "3006", 2016)),
         PanelValidationError, ("3006", "2016", "no inhabitants")),
    Case("zero-year-everywhere", _validate(lambda p: _set_population(p, CODES, 2016)),
         PanelValidationError, ("3001", "2016")),
    Case("commuting-to-unknown-code", _validate(_commute_to("9999")),
         PanelValidationError, ("9999", "work municipality")),
    Case("blank-region", _validate(_blank("region")), PanelValidationError, ("3003", "region")),
    Case("blank-county", _validate(_blank("county", 4)), PanelValidationError,
         ("3005", "county")),
    Case("empty-panel", _validate(lambda p: p.isel(municipality=[])), PanelValidationError,
         ("empty", "municipality")),
    Case("no-years", _validate(lambda p: p.isel(year=[])), PanelValidationError,
         ("empty", "year")),
    Case("no-population", _validate(lambda p: p.drop_vars("population")),
         PanelValidationError, ("population",)),
    Case("missing-coordinate", _validate(lambda p: p.drop_vars("region")),
         PanelValidationError, ("region",)),
    Case("sex-labels", _validate(lambda p: p.assign_coords(sex=["F", "M"])),
         PanelValidationError, ("sex", "'F'")),
    Case("ages-start-at-1", _validate(lambda p: p.assign_coords(age=p["age"].values + 1)),
         PanelValidationError, ("age",)),
    Case("rates-per-thousand", _validate(_rates_per_thousand), PanelValidationError,
         ("mortality_rate", "1000")),
    Case("flow-in-last-stock-year", _validate(_flow_in_last_year), PanelValidationError,
         ("births", "2016")),
    Case("panel-file-missing", lambda c: load_panel(c.tmp / "nowhere.nc"),
         PanelValidationError, ("nowhere.nc", "vekst fetch")),
    Case("panel-file-not-netcdf", lambda c: load_panel(write_text("p.nc", "a,b\n1,2\n")(c)),
         PanelValidationError, ("p.nc", "netCDF")),
    Case("panel-file-truncated", lambda c: load_panel(_truncated_panel(c)),
         PanelValidationError, ("cut.nc",)),
    Case("fit-data-duplicate-codes",
         lambda c: migration_data(_recode(c.panel, ["3001", "3001", "3003", "3004", "3005",
                                                    "3006"]), load_spec()),
         PanelValidationError, ("3001", "duplicate")),
    Case("fit-data-negative-population",
         lambda c: migration_data(_set_population(c.panel, "3002", 2013, value=-1.0),
                                  load_spec()),
         PanelValidationError, ("3002", "2013")),
]


@pytest.mark.parametrize("case", PANEL_CASES, ids=lambda c: c.id)
def test_bad_panel(case, ctx):
    check_case(case, ctx)


def test_unusual_panel_is_accepted_when_overridden(ctx):
    """The plausibility checks yield to an explicit override; schema checks do not."""
    big = _scale_population(ctx.panel, 1e9)
    assert validate_panel(big, code_vintage="auto", allow_unusual=True) is big
    flagged = big.assign_attrs(allow_unusual="yes")
    assert validate_panel(flagged, code_vintage="auto") is flagged
    negative = _set_population(flagged, "3001", 2010, value=-1.0)
    with pytest.raises(PanelValidationError, match="negative"):
        validate_panel(negative, code_vintage="auto", allow_unusual=True)


def test_the_shipped_and_toy_panels_pass(default_panel, ctx):
    assert validate_panel(default_panel, code_vintage="auto") is default_panel
    assert validate_panel(ctx.panel, code_vintage="auto") is ctx.panel


# --------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------


def _spec(edit: Callable[[dict], None]) -> Callable[[Context], object]:
    def run(ctx: Context):
        edit(ctx.spec)
        return spec_from_dict(ctx.spec, source="my.toml")

    return run


def _put(path: str, value) -> Callable[[dict], None]:
    def edit(raw: dict) -> None:
        *parents, key = path.split(".")
        table = raw
        for part in parents:
            table = table[part]
        table[key] = value

    return edit


SPEC_CASES = [
    Case("enabled-string", _spec(_put("fertility.enabled", "false")), SpecError,
         ("my.toml", "[fertility] enabled", "'false'")),
    Case("year-drift-string", _spec(_put("mortality.year_drift", "no")), SpecError,
         ("[mortality] year_drift", "'no'")),
    Case("drift-number", _spec(_put("migration.attractiveness_drift", 1)), SpecError,
         ("attractiveness_drift",)),
    Case("mean-is-bool", _spec(_put("migration.priors.beta_mu_mean.ds", True)), SpecError,
         ("beta_mu_mean.ds", "True")),
    Case("sd-nan", _spec(_put("migration.priors.beta_mu_sd.vra_0", float("nan"))), SpecError,
         ("beta_mu_sd.vra_0", "nan")),
    Case("sd-inf", _spec(_put("migration.priors.beta_sigma_sd.ds", float("inf"))), SpecError,
         ("beta_sigma_sd.ds", "inf")),
    Case("scalar-sd-nan", _spec(_put("migration.priors.sigma_base_sd", float("nan"))),
         SpecError, ("sigma_base_sd",)),
    Case("scalar-sd-negative", _spec(_put("migration.priors.sigma_pop_sd", -1.0)), SpecError,
         ("sigma_pop_sd", "positive")),
    Case("vital-sd-inf", _spec(_put("mortality.priors.alpha_sd", float("inf"))), SpecError,
         ("[mortality.priors] alpha_sd",)),
    Case("nu-bool", _spec(_put("migration.student_t_nu", True)), SpecError, ("student_t_nu",)),
    Case("no-covariates", _spec(_put("migration.covariates", [])), SpecError,
         ("covariates", "at least one")),
    Case("unknown-covariate", _spec(_put("migration.covariates", ["vra_0", "jobs"])),
         SpecError, ("'jobs'",)),
    Case("unknown-key", _spec(_put("migration.pooling", "full")), SpecError, ("'pooling'",)),
    Case("priors-not-table", _spec(_put("fertility.priors", 0.2)), SpecError,
         ("[fertility.priors]", "table")),
    Case("spec-file-missing", lambda c: load_spec(c.tmp / "nope.toml"), SpecError,
         ("nope.toml",)),
    Case("spec-not-toml", lambda c: load_spec(write_text("bad.toml", "name = [\n")(c)),
         SpecError, ("bad.toml", "TOML")),
]


@pytest.mark.parametrize("case", SPEC_CASES, ids=lambda c: c.id)
def test_bad_spec(case, ctx):
    check_case(case, ctx)


# --------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------

def _scenario_file(name: str, text: str) -> Callable[[Context], object]:
    return lambda c: load_scenario(write_text(name, text)(c))


def _array(scenario: Scenario) -> Callable[[Context], object]:
    return lambda c: scenario.job_growth_array(c.panel, np.arange(2016, 2026))


SCENARIO_CASES = [
    Case("fertility-times-1e6", lambda c: Scenario(asfr_multiplier=1e6), ScenarioError,
         ("asfr_multiplier", "1e+06")),
    Case("mortality-times-1e6", lambda c: Scenario(mortality_improvement_multiplier=1e6),
         ScenarioError, ("mortality_improvement_multiplier",)),
    Case("multiplier-nan", lambda c: Scenario(asfr_multiplier=float("nan")), ScenarioError,
         ("asfr_multiplier", "nan")),
    Case("e0-shift-inf", lambda c: Scenario(e0_shift=float("inf")), ScenarioError,
         ("e0_shift",)),
    Case("tfr-bool", lambda c: Scenario(tfr_target=True), ScenarioError, ("tfr_target",)),
    Case("job-growth-1e6", lambda c: Scenario(job_growth=(JobGrowth("3001", 2020, 1e6),)),
         ScenarioError, ("3001", "2020", "30")),
    Case("job-growth-nan",
         lambda c: Scenario(job_growth=(JobGrowth("3002", 2021, float("nan")),)),
         ScenarioError, ("3002", "nan")),
    Case("job-growth-inf",
         lambda c: Scenario(job_growth=(JobGrowth("R1", 2021, float("-inf")),)),
         ScenarioError, ("R1", "inf")),
    Case("csv-unquoted-decimal-comma", _scenario_file("jobs.csv", JOB_HEADER + "3001,2020,2,5%\n"),
         ScenarioError, ("jobs.csv", "line 2", "decimal comma")),
    Case("csv-missing-column", _scenario_file("jobs.csv", "unit,year,growth\n3001,2020,1\n"),
         ScenarioError, ("jobs.csv", "relative_job_growth")),
    Case("csv-blank-value", _scenario_file("jobs.csv", JOB_HEADER + "3001,2020,\n"),
         ScenarioError, ("jobs.csv", "line 2", "missing")),
    Case("csv-fractional-year", _scenario_file("jobs.csv", JOB_HEADER + "3001,2020.5,1\n"),
         ScenarioError, ("line 2", "2020.5")),
    Case("csv-text-growth", _scenario_file("jobs.csv", JOB_HEADER + "3001,2020,lots\n"),
         ScenarioError, ("line 2", "'lots'")),
    Case("csv-growth-nan", _scenario_file("jobs.csv", JOB_HEADER + "3001,2020,nan\n"),
         ScenarioError, ("line 2",)),
    Case("json-text-multiplier", _scenario_file("s.json", '{"asfr_multiplier": "high"}'),
         ScenarioError, ("s.json", "asfr_multiplier", "'high'")),
    Case("json-unknown-key", _scenario_file("s.json", '{"fertility_factor": 2}'),
         ScenarioError, ("s.json", "fertility_factor")),
    Case("json-syntax", _scenario_file("s.json", '{"asfr_multiplier": 1.1,}'), ScenarioError,
         ("s.json", "parse")),
    Case("toml-growth-row-unreadable",
         _scenario_file("s.toml", '[[job_growth]]\nunit = "3001"\nyear = 2020\n'),
         ScenarioError, ("s.toml", "relative_job_growth")),
    Case("scenario-file-missing", lambda c: load_scenario(c.tmp / "none.json"), ScenarioError,
         ("none.json", "not found")),
    Case("scenario-unknown-format", _scenario_file("s.yaml", "asfr_multiplier: 2\n"),
         ScenarioError, ("s.yaml", ".json")),
    Case("rows-outside-horizon", _array(Scenario(job_growth=(JobGrowth("3001", 2050, 1.0),))),
         ScenarioError, ("2050", "2016-2025")),
    Case("unknown-unit", _array(Scenario(job_growth=(JobGrowth("7777", 2020, 1.0),))),
         ScenarioError, ("7777",)),
]


@pytest.mark.parametrize("case", SCENARIO_CASES, ids=lambda c: c.id)
def test_bad_scenario(case, ctx):
    check_case(case, ctx)


@pytest.mark.parametrize(
    ("text", "expected"), [("2,5%", 2.5), ("-1,25", -1.25), ("3.0 %", 3.0), ("\u22122", -2.0)]
)
def test_quoted_decimal_comma_and_percent_are_read(tmp_path, text, expected):
    path = tmp_path / "jobs.csv"
    path.write_text(JOB_HEADER + f'3001,2020,"{text}"\n', encoding="utf-8")
    (row,) = load_scenario(path).job_growth
    assert row.relative_job_growth == pytest.approx(expected)


# --------------------------------------------------------------------------------------
# Fit settings and files
# --------------------------------------------------------------------------------------

FIT_CASES = [
    Case("draws-0", lambda c: check_sampler_settings(draws=0, tune=10, chains=2), UsageError,
         ("draws", ">= 1")),
    Case("chains-0", lambda c: check_sampler_settings(draws=10, tune=10, chains=0), UsageError,
         ("chains",)),
    Case("tune-negative", lambda c: check_sampler_settings(draws=10, tune=-5, chains=2),
         UsageError, ("tune", "-5")),
    Case("draws-float", lambda c: check_sampler_settings(draws=10.5, tune=5, chains=1),
         UsageError, ("draws", "10.5")),
    Case("sampler-unknown",
         lambda c: check_sampler_settings(draws=10, tune=10, chains=1, sampler="foo"),
         UsageError, ("'foo'", "nutpie")),
    # fit_model refuses before it builds anything, so no model data are needed here.
    Case("fit-model-draws-0", lambda c: fit_model(None, None, draws=0), UsageError,
         ("draws",)),
    Case("out-is-folder", lambda c: check_output_file(c.tmp), OutputError,
         ("--out", "is a folder")),
    Case("out-under-a-file",
         lambda c: check_output_file(write_text("plain", "x")(c) / "fit.nc"), OutputError,
         ("plain", "is a file")),
]


@pytest.mark.parametrize("case", FIT_CASES, ids=lambda c: c.id)
def test_bad_fit_settings(case, ctx):
    check_case(case, ctx)


# --------------------------------------------------------------------------------------
# The SSB client
# --------------------------------------------------------------------------------------

SPEC = TableSpec(
    key="toy",
    table_id="99999",
    title="Toy table",
    description="test",
    feeds=("population",),
    contents=(Content("persons", code="Personer1"),),
    selections=(Select("Kjonn", codes=("1", "2")),),
    split_order=("Tid", "Region"),
)


def _table() -> FakeTable:
    return FakeTable(
        "99999",
        [
            FakeDim("Region", ["0", "0301", "4601"], elimination=True),
            FakeDim("Kjonn", ["0", "1", "2"], elimination=True),
            FakeDim("ContentsCode", ["Personer1"], label="statistikkvariabel"),
            FakeDim("Tid", [str(y) for y in range(2015, 2022)]),
        ],
        lambda key: 1.0,
    )


def _client(tmp: Path, transport) -> SsbClient:
    clock = FakeClock()
    return SsbClient(
        transport=transport,
        clock=clock,
        cache_dir=tmp / "cache",
        rate_limiter=RateLimiter(max_requests=1000, period=60.0, min_interval=0.0, clock=clock),
        retry=RetryPolicy(max_retries=2, backoff=1.0),
    )


def _status(code: int):
    return lambda kind, n, request: Response(code, {}, b'{"error": "x"}')


class _Down:
    def send(self, request):
        raise TransportError("connection refused by data.ssb.no")


SSB_CASES = [
    Case("table-missing", lambda c: _client(c.tmp, StubTransport({})).fetch_table(
        SPEC, first_year=2020), SsbHttpError, ("99999", "404")),
    Case("server-busy", lambda c: _client(c.tmp, StubTransport(
        {"99999": _table()}, script=_status(503))).fetch_table(SPEC, first_year=2020),
        SsbHttpError, ("99999", "503")),
    Case("network-down", lambda c: _client(c.tmp, _Down()).fetch_table(SPEC, first_year=2020),
         SsbHttpError, ("99999", "connection refused", "again later")),
    Case("not-json-stat", lambda c: _client(c.tmp, StubTransport(
        {"99999": _table()}, script=lambda kind, n, r: json_response({"oops": 1})))
        .metadata("99999"), SsbError, ("99999", "JSON-stat")),
    Case("period-not-covered", lambda c: _client(c.tmp, StubTransport({"99999": _table()}))
         .fetch_table(SPEC, first_year=1990, last_year=1995), TableSpecError, ("99999",)),
]


@pytest.mark.parametrize("case", SSB_CASES, ids=lambda c: c.id)
def test_ssb_faults(case, ctx):
    check_case(case, ctx)
    assert issubclass(case.error, SourceError)


def test_error_categories_keep_their_builtin_bases():
    """Code written against ValueError/RuntimeError keeps catching these."""
    assert issubclass(PanelValidationError, ValueError) and issubclass(PanelError, VekstError)
    assert issubclass(SpecError, ValueError) and issubclass(ScenarioError, ValueError)
    assert issubclass(SsbHttpError, RuntimeError) and SsbHttpError.exit_code == EXIT_SOURCE
    from vekst.fit import FitIdentityError, NotConvergedError

    assert issubclass(NotConvergedError, RuntimeError) and NotConvergedError.exit_code == 3
    assert issubclass(FitIdentityError, ValueError) and FitIdentityError.exit_code == EXIT_INPUT

