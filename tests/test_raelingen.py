"""The published check: Rælingen's commuting shares and relative job growth, 2021.

Vareide (2022), *Drivkrefter for flytting*, table 2: the employed residents of Rælingen
by work municipality (all municipalities with more than 1 %) and each one's relative job
growth in 2021. Reproduced from the embedded panel (SSB 03321 commuting and 11618
employment, 4th quarter 2021) with the publication's conventions:

* shares are of all employed residents (``denominator="employed_residence"``: 10,028
  in 2021, of whom 10,021 work in a Norwegian municipality and 7 on the shelf, on
  Svalbard or at an unknown place);
* national job growth is the growth of Norway's total employment
  (``national="residence"``: +3.007 %, against +3.019 % for the jobs located in
  municipalities).

With the package defaults (row-total shares, national growth over municipal jobs) two
published figures move by one in the first decimal: Oslo's share 37.05 % (rounds to
37.1, published 37.0) and Ullensaker's RA 5.64 (5.6, published 5.7). The tests below pin
both the reproduction and the size and cause of those differences.
"""

from __future__ import annotations

import numpy as np
import pytest

from vekst.features import commuting_shares, national_job_growth, relative_job_growth, vra

YEAR = 2021
# name in the publication -> (share of employed residents %, relative job growth pp)
PUBLISHED = {
    "Oslo": (37.0, 1.4),
    "Lillestrøm": (20.8, 1.2),
    "Rælingen": (15.2, -1.2),
    "Lørenskog": (13.0, 0.1),
    "Bærum": (2.6, -1.3),
    "Ullensaker": (2.4, 5.7),
    "Nittedal": (1.2, 0.0),
}
TOLERANCE = 0.05


@pytest.fixture(scope="module")
def codes(default_panel) -> dict[str, str]:
    """Publication names -> 2024 codes, looked up in the panel's own names."""
    names = [str(n) for n in default_panel["name"].values]
    out = {}
    for wanted in PUBLISHED:
        # Oslo's official name is bilingual ("Oslo-Oslove"); match the Norwegian part.
        hits = [
            str(code)
            for code, name in zip(default_panel["municipality"].values, names, strict=True)
            if name == wanted or name.split("-")[0] == wanted
        ]
        assert len(hits) == 1, (wanted, hits)
        out[wanted] = hits[0]
    return out


def test_codes_found_by_name(codes):
    assert codes == {
        "Oslo": "0301",
        "Lillestrøm": "3205",
        "Rælingen": "3224",
        "Lørenskog": "3222",
        "Bærum": "3201",
        "Ullensaker": "3209",
        "Nittedal": "3232",
    }


def test_published_table_2_is_reproduced(default_panel, codes):
    shares = commuting_shares(default_panel, YEAR, denominator="employed_residence")
    ra = relative_job_growth(default_panel, years=[YEAR], national="residence")
    home = codes["Rælingen"]
    for name, (share, growth) in PUBLISHED.items():
        got_share = round(
            100 * float(shares.sel(municipality=home, work_municipality=codes[name])), 1
        )
        got_ra = round(float(ra.sel(municipality=codes[name], year=YEAR)), 1)
        assert abs(got_share - share) < TOLERANCE, (name, got_share, share)
        assert abs(got_ra - growth) < TOLERANCE, (name, got_ra, growth)


def test_published_rows_are_those_above_one_percent(default_panel, codes):
    shares = commuting_shares(default_panel, YEAR, denominator="employed_residence")
    row = shares.sel(municipality=codes["Rælingen"])
    above = {str(c) for c in row["work_municipality"].values[row.values > 0.01]}
    assert above == set(codes.values())


def test_default_conventions_differ_only_where_documented(default_panel, codes):
    home = codes["Rælingen"]
    default_share = commuting_shares(default_panel, YEAR).sel(municipality=home)
    published_share = commuting_shares(default_panel, YEAR, denominator="employed_residence").sel(
        municipality=home
    )
    row_total = float(default_panel["commuting"].sel(municipality=home, year=YEAR).sum())
    residents = float(default_panel["employed_residence"].sel(municipality=home, year=YEAR))
    assert (row_total, residents) == (10021.0, 10028.0)
    np.testing.assert_allclose(default_share * row_total, published_share * residents, rtol=1e-12)
    assert round(100 * float(default_share.sel(work_municipality=codes["Oslo"])), 1) == 37.1

    workplace = national_job_growth(default_panel).sel(year=YEAR)
    everyone = national_job_growth(default_panel, national="residence").sel(year=YEAR)
    assert float(workplace) == pytest.approx(3.019, abs=0.0005)
    assert float(everyone) == pytest.approx(3.007, abs=0.0005)
    shift = float(workplace - everyone)
    default_ra = relative_job_growth(default_panel, years=[YEAR])
    published_ra = relative_job_growth(default_panel, years=[YEAR], national="residence")
    np.testing.assert_allclose(default_ra + shift, published_ra, atol=1e-9, equal_nan=True)
    assert round(float(default_ra.sel(municipality=codes["Ullensaker"], year=YEAR)), 1) == 5.6


def test_raelingen_vra_2021(default_panel, codes):
    home = codes["Rælingen"]
    published = vra(default_panel, national="residence", denominator="employed_residence")
    value = float(published.sel(lag=0, municipality=home, year=YEAR))
    # Independent sum over every work municipality, not just the seven printed.
    shares = commuting_shares(default_panel, YEAR, denominator="employed_residence").sel(
        municipality=home
    )
    ra = relative_job_growth(default_panel, national="residence").sel(year=YEAR)
    by_hand = float(
        np.nansum(shares.values * ra.sel(municipality=shares["work_municipality"].values).values)
    )
    assert value == pytest.approx(by_hand)
    # The printed rows' effects (share x RA) add up to 0.71 pp; the other 8 % of the
    # employed residents add little.
    printed = sum(s * g for s, g in PUBLISHED.values()) / 100
    assert printed == pytest.approx(0.71, abs=0.01)
    assert abs(value - printed) < 0.1
    assert value == pytest.approx(0.755, abs=0.001)
    default = float(vra(default_panel).sel(lag=0, municipality=home, year=YEAR))
    assert default == pytest.approx(0.743, abs=0.001)
