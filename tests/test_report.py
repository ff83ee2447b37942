"""The HTML report from small synthetic inputs: sections, figures, captions, the gate banner."""

import base64
import re

import numpy as np
import pytest

from report_inputs import (
    FAILED,
    LARGEST,
    SEED,
    _idata,
    _migration_data,
    _projection,
    make_attribution,
    make_inputs,
    make_panel,
)
from vekst.report.html import (
    ReportInputError,
    ReportOptions,
    default_municipalities,
    write_report,
)


@pytest.fixture(scope="module")
def panel():
    return make_panel()


@pytest.fixture(scope="module")
def inputs(panel):
    return make_inputs(panel)


@pytest.fixture(scope="module")
def report(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    # A low resolution keeps the test fast; the layout is the same.
    index = write_report(out, options=ReportOptions(municipalities=["4621"], dpi=40), **inputs)
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
    # A fit without housing terms has no housing section and no housing box.
    assert not {"housing", "housing-box"} & _ids(html)
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
    # national + counties; per municipality fan, pyramids 2030 and 2040 in one figure on a
    # shared scale, drivers (x4); two rankings; coefficients.
    assert len(sources) == 2 + 4 * 3 + 2 + 1
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert base64.b64decode(sources[0].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((out / "figures").glob("*.png"))) == len(sources)
    assert (out / "tables" / "age_groups_4621.csv").is_file()
    assert (out / "tables" / "attractiveness_municipalities.csv").is_file()


def test_report_is_self_contained(report):
    _, html = report
    # The SVG namespace is an identifier, not an address the page loads.
    html = html.replace('"http://www.w3.org/2000/svg"', "")
    assert "http://" not in html and "https://" not in html
    assert not re.search(r'(src|href)="(?!data:|#)', html)
    # The explorer's script is inline; nothing is loaded from elsewhere.
    assert not re.search(r"<script[^>]*\bsrc=", html) and "<link" not in html


def test_report_captions_explain_the_figures(report):
    _, html = report
    for phrase in (
        "middle 50 %",  # fan chart bands
        "Men to the left, women to the right",  # pyramid
        "one bar per five-year age group",  # 5-year groups by default
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
        tmp_path,
        panel=inputs["panel"],
        idata=idata,
        ols=None,
        projection=projection,
        options=ReportOptions(dpi=40),
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


def test_norwegian_report_speaks_norwegian(inputs, tmp_path):
    projection = inputs["projection"].drop_vars("population")
    index = write_report(
        tmp_path,
        panel=inputs["panel"],
        idata=inputs["idata"],
        ols=inputs["ols"],
        projection=projection,
        options=ReportOptions(dpi=30, lang="nb"),
    )
    html = index.read_text(encoding="utf-8")
    assert '<html lang="nb">' in html
    for phrase in (
        "Din kommune",
        "Norge og fylkene",
        "Attraktivitet: barometeret med usikkerhet",
        "Hva driver flyttingen",
        "Diagnostikk: kan resultatene stoles på?",
        "Datakilder og modellen",
        "R-hat sammenligner",
    ):
        assert phrase in html, phrase
    for english in ("What drives migration", "Data sources and the model", "R-hat compares"):
        assert english not in html, english
    # Norwegian numbers: decimal comma in the coefficient table, no decimal point.
    coefficients = html[html.index('id="coefficients"') : html.index('id="diagnostics"')]
    assert re.search(r"[+−]\d+,\d{3}", coefficients)
    assert not re.search(r"[+−]\d+\.\d{3}", coefficients)


def test_report_tables_are_flat_csv_files(report):
    import pandas as pd

    out, _ = report
    raw = (out / "tables" / "age_groups_4621.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    table = pd.read_csv(out / "tables" / "age_groups_4621.csv")
    assert list(table.columns) == ["age_group", "year", "mean", "q10", "q50", "q90"]
    assert table["q50"].dtype.kind == "i"  # whole persons
    assert set(table["year"]) >= {2022, 2030, 2040}


def test_report_splits_the_bands_by_source(inputs, tmp_path):
    import pandas as pd

    from vekst.report.uncertainty_section import SOURCE_LABELS

    codes = [str(c) for c in inputs["projection"]["municipality"].values]
    years = np.arange(2022, 2041)
    attribution = make_attribution(codes, years)
    index = write_report(
        tmp_path, options=ReportOptions(municipalities=["4621"], dpi=40),
        uncertainty=attribution, **inputs,
    )
    html = index.read_text(encoding="utf-8")
    assert html.index('id="national"') < html.index('id="uncertainty"') < html.index(
        'id="municipality-0301"'
    )
    # The place caption names the largest source of the last year with its share.
    last = attribution["share_total"].sel(municipality="4621", year=2040).to_pandas()
    top = last.idxmax()
    assert f"{100 * last.max():.0f} % {SOURCE_LABELS[top][0]}" in html
    ranking = pd.read_csv(tmp_path / "tables" / "uncertainty_by_source_ranking.csv",
                          dtype={"municipality": str})
    expected = attribution["share_total"].sel(year=2040).to_pandas().idxmax(axis=1)
    labels = {k: v[0] for k, v in SOURCE_LABELS.items()}
    found = dict(zip(ranking["municipality"], ranking["dominant"], strict=True))
    assert found == {code: labels[s] for code, s in expected.items()}
    assert (tmp_path / "figures" / "uncertainty_4621.png").is_file()


def test_a_municipality_chart_states_the_coverage_its_size_class_measured(inputs, tmp_path):
    import pandas as pd

    rows = []
    for size, share in (("all", 0.81), ("<2k", 0.83), ("50k+", 0.76)):
        rows.append(("municipality", 2015, 4, size, "total", share))
    rows.append(("county", 2015, 4, "all", "total", 0.84))
    rows += [("municipality", 2015, 4, "all", group, share)
             for group, share in (("0", 0.75), ("20-29", 0.78), ("90+", 0.85))]
    backtest = pd.DataFrame(
        rows, columns=["level", "origin", "horizon", "size_class", "age_group", "coverage_80"]
    ).assign(method="bayes", coverage_50=0.5, coverage_95=0.95, median_ape=2.0)
    options = ReportOptions(municipalities=["4621"], dpi=30, backtest=backtest)
    html = write_report(tmp_path, options=options, **inputs).read_text(encoding="utf-8")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))

    def section(code):
        start = text.index(f"Municipality {code}")
        return text[start : start + 3000]

    # 0301 has 60,000 inhabitants, 4621 has 1,000 (tests/report_inputs.py).
    assert "50,000 inhabitants and more fell inside the 80 % band 76 %" in section("0301")
    assert "under 2,000 inhabitants fell inside the 80 % band 83 %" in section("4621")
    assert "counties (the largest units backtested) fell inside their 80 % bands 84 %" in text
    ages = "age groups held the real number 75 % of the time (0) to 85 % (90+)"
    assert ages in section("0301")


def test_the_charts_quote_the_backtest_origins_made_as_this_forecast_was(inputs, tmp_path):
    import json

    import pandas as pd

    # Short-panel origins covered 95 %, calibrated ones 66 % among places of 50,000+.
    rows = []
    for origin, large in ((2010, 0.95), (2011, 0.95), (2015, 0.66), (2016, 0.66)):
        rows += [("municipality", origin, 4, "all", "total", 0.8),
                 ("municipality", origin, 4, "50k+", "total", large)]
    backtest = pd.DataFrame(
        rows, columns=["level", "origin", "horizon", "size_class", "age_group", "coverage_80"]
    ).assign(method="bayes", coverage_50=0.5, coverage_95=0.95, median_ape=2.0)
    notes = {2010: {"schedule_calibrated_on": None}, 2011: {"schedule_calibrated_on": None},
             2015: {"schedule_calibrated_on": [2012, 2014]},
             2016: {"schedule_calibrated_on": [2012, 2015]}}
    projection = inputs["projection"].copy()
    projection.attrs["assumptions"] = json.dumps(
        {"migration_schedule_calibrated_on": [2018, 2021]}
    )
    options = ReportOptions(
        municipalities=["4621"], dpi=30, backtest=backtest, backtest_notes=notes
    )
    html = write_report(
        tmp_path, options=options, **{**inputs, "projection": projection}
    ).read_text(encoding="utf-8")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    oslo = text[text.index("Municipality 0301") :][:3000]
    assert "origins 2015-2016 (made as this forecast was)" in oslo
    assert "50,000 inhabitants and more fell inside the 80 % band 66 %" in oslo
    assert "In the other origins (2010-2011) the bands held for 80 %" in text
