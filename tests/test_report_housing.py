"""The report's section "Housing plans": shown with housing terms only, with the right numbers."""

import json
import re

import numpy as np
import pytest

from report_inputs import make_housing_effect, make_inputs, make_panel, with_housing
from vekst.report.html import ReportOptions, write_report
from vekst.report.html_helpers import FigureStore
from vekst.report.i18n import Lang, fmt_int, fmt_number

PLANNED = ["4621", "3203"]


@pytest.fixture(scope="module")
def inputs():
    return make_inputs(make_panel())


@pytest.fixture(scope="module")
def effect(inputs):
    codes = [str(c) for c in inputs["projection"]["municipality"].values]
    return make_housing_effect(codes, PLANNED)


def _no_png(self, fig, name, alt, caption):
    """FigureStore.add without drawing: the housing section has no figures, and the
    other sections' figures are tested in test_report.py (drawing them takes most of the
    time of a report)."""
    return {"kind": "figure", "src": "", "file": f"figures/{name}.png", "alt": alt,
            "caption": caption, "width": 1, "height": 1}


@pytest.fixture(scope="module")
def html(inputs, effect, tmp_path_factory):
    housing = {**with_housing(inputs), "decomposition": None}
    options = ReportOptions(dpi=30, housing_plan=effect)
    out = tmp_path_factory.mktemp("housing")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FigureStore, "add", _no_png)
        return write_report(out, options=options, **housing).read_text(encoding="utf-8")


def _section(html, name):
    start = html.index(f'<section id="{name}">')
    return html[start : html.index("</section>", start)]


def _explorer(html):
    match = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>',
                      html, re.S)
    return json.loads(match.group(1))


def test_section_follows_the_coefficients_and_states_the_caveat(html):
    assert html.index('<section id="coefficients">') < html.index('<section id="housing">')
    section = _section(html, "housing")
    assert "<h2>Housing plans</h2>" in section
    assert "not the causal effect" in section
    assert "net migrants per completed dwelling" in section
    assert 'href="#housing"' in html  # in the navigation


def test_coefficients_beside_ols_in_migrants_per_dwelling(html, inputs):
    section = _section(html, "housing")
    housing = with_housing(inputs)
    draws = housing["idata"].posterior["beta_mu"].sel(covariate="housing_0").values.ravel()
    low, high = np.quantile(draws, [0.05, 0.95])
    bayes = f"{draws.mean():.3f} [{low:.3f}, {high:.3f}]".replace("-", "\u2212")
    assert bayes in section
    per_dwelling = f"{10 * draws.mean():.2f} [{10 * low:.2f}, {10 * high:.2f}]"
    assert per_dwelling.replace("-", "\u2212") in section
    ols = housing["ols"]
    beta = float(ols.beta.sel(covariate="housing_0"))
    se = float(ols.beta_se.sel(covariate="housing_0"))
    assert f"{beta:.3f} ± {se:.3f}".replace("-", "\u2212") in section
    # OLS uses complete cases only, and the caption says how many rows that leaves.
    assert f"on complete cases only: the {ols.n_obs} municipality-years" in section


def test_plan_table_shows_the_effect_of_each_planning_municipality(html, effect):
    section = _section(html, "housing")
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>(.*?)</tr>", section, re.S)
    shown = {name: cells for name, cells in rows if "(" in name and name.startswith("Place")}
    assert set(shown) == {f"Place {code} ({code})" for code in PLANNED}
    for code in PLANNED:
        cells = re.findall(r"<td>(.*?)</td>", shown[f"Place {code} ({code})"])
        extra = float(effect["extra_completions"].sel(municipality=code))
        moved = effect["net_migration_effect"].sel(municipality=code, year=2023).values
        gained = effect["population_effect"].sel(municipality=code, year=2040).values
        assert cells[0] == fmt_int(extra)
        assert cells[1] == (
            f"{fmt_int(np.median(moved))} ({fmt_int(np.quantile(moved, 0.05))} – "
            f"{fmt_int(np.quantile(moved, 0.95))})"
        )
        assert cells[3].startswith(fmt_int(np.median(gained)) + " (")
    assert "same 50 posterior draws" in section


def test_explorer_draws_the_line_for_planning_municipalities_only(html, effect):
    data = _explorer(html)
    assert set(data["housing"]) == {f"m{code}" for code in PLANNED}
    line = data["housing"]["m4621"]["band"]
    gained = effect["population_effect"].sel(municipality="4621")
    np.testing.assert_allclose(line[1], gained.median("draw").values, atol=0.06)
    assert data["housing_plan"] == [2023, 2030]
    assert 'id="housing-box" hidden' in html


def test_no_section_without_housing_terms(inputs, effect):
    from vekst.report.housing_section import housing_section

    assert housing_section(inputs["idata"], inputs["ols"], effect, {}, Lang.en) is None


def test_section_in_norwegian(inputs, effect):
    from vekst.report.housing_section import housing_section

    housing = with_housing(inputs)
    section = housing_section(housing["idata"], housing["ols"], effect, {}, Lang.nb)
    assert section["title"] == "Boligplaner"
    assert "ikke den kausale effekten" in section["intro"]
    draws = housing["idata"].posterior["beta_mu"].sel(covariate="housing_0")
    tables = "".join(b.get("html", "") + b.get("caption", "") for b in section["blocks"])
    assert fmt_number(float(draws.mean()), "nb", 3) in tables
    assert "komplette observasjoner" in tables
    # Without a plan: the coefficients and a pointer to where a plan comes from.
    alone = housing_section(housing["idata"], housing["ols"], None, {}, Lang.en)
    assert [b["kind"] for b in alone["blocks"]] == ["table", "note"]
    assert "vekst demo" in alone["blocks"][1]["text"] and "below" not in alone["intro"]


def test_drivers_leave_out_housing_when_the_fit_has_none(inputs):
    from vekst.report.explorer import estimated_components

    contribution = inputs["decomposition"]["contribution"]
    names = [str(c) for c in contribution["component"].values]
    assert "housing" in estimated_components(inputs["panel"], names, contribution)
    without = contribution.where(contribution["component"] != "housing", 0.0)
    shown = estimated_components(inputs["panel"], names, without)
    assert "housing" not in shown and "centrality" in shown
