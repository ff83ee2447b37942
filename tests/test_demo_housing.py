"""``vekst demo`` end to end on a slice of the embedded data: the housing spec by default,
the plan's CSV and the report's section. A short unconverged fit (about 75 s on a busy
2-core machine), so it is marked slow."""

import pandas as pd
import pytest

from vekst import load_default
from vekst.commands.demo import DemoSettings, run_demo


@pytest.mark.slow
def test_demo_fits_housing_and_reports_the_plan(tmp_path):
    panel = load_default()
    # Telemark (the municipalities with completions) and four others.
    codes = [c for c in panel["municipality"].values.astype(str) if c.startswith("40")]
    codes += ["0301", "4601", "3201", "5001"]
    small = panel.sel(municipality=codes)
    if "work_municipality" in small.dims:
        small = small.sel(work_municipality=codes)
    settings = DemoSettings(
        draws=40, tune=40, chains=2, projection_draws=20, by_source_draws=0,
        housing_plan_draws=10, allow_unconverged=True, csv_format="nb", end_year=2035,
    )
    index = run_demo(tmp_path, settings, panel=small)
    html = index.read_text(encoding="utf-8")
    assert '<section id="housing">' in html and 'id="housing-box"' in html
    frame = pd.read_csv(tmp_path / "housing_plan_effect.csv", sep=";", decimal=",",
                        encoding="utf-8-sig", dtype={"municipality": str})
    telemark = {c for c in codes if c.startswith("40")}
    assert set(frame["municipality"]) == telemark  # a plan where completions are known
    planned = frame[frame["year"].between(2023, 2030)]
    assert (planned["extra_completions"] >= 0).all() and planned["extra_completions"].sum() > 0
    assert (frame.loc[frame["year"] > 2030, "extra_completions"] == 0).all()
