"""Municipality code harmonisation with the shipped code table."""

from __future__ import annotations

import pandas as pd
import pytest

from vekst.data.codes import (
    UnknownMunicipalityCodeError,
    code_table,
    harmonise,
    municipality_table,
    normalise_codes,
)


def test_merger_adds_values_of_the_old_municipalities():
    # Indre Østfold (3118) was formed in 2020 from Trøgstad, Spydeberg, Askim, Eidsberg and
    # Hobøl; on 2019 codes their values must add up in 3118.
    frame = pd.DataFrame(
        {
            "kommune": ["0122", "0123", "0124", "0125", "0138", "0301"],
            "jobs": [10, 20, 30, 40, 50, 7],
        }
    )
    out = harmonise(frame, code_column="kommune", year=2019, value_columns=["jobs"])
    result = out.set_index("kommune")["jobs"]
    assert result["3118"] == 150
    assert result["0301"] == 7
    assert len(result) == 2
    assert pd.api.types.is_integer_dtype(out["jobs"]), "whole weights keep integer counts"


def test_recode_only_and_year_column_with_keys():
    frame = pd.DataFrame(
        {
            "code": ["0101", "3001", "3101", "0101"],
            "year": [2019, 2021, 2024, 2019],
            "sex": ["female", "female", "female", "male"],
            "n": [1.0, 2.0, 4.0, 8.0],
        }
    )
    out = harmonise(frame, code_column="code", year_column="year", value_columns=["n"])
    # Halden: 0101 (to 2019), 3001 (2020-2023), 3101 (2024). Rows keep their year and sex.
    assert set(out["code"]) == {"3101"}
    got = out.set_index(["year", "sex"])["n"]
    assert got[(2019, "female")] == 1.0
    assert got[(2019, "male")] == 8.0
    assert got[(2021, "female")] == 2.0
    assert got[(2024, "female")] == 4.0
    assert list(out.columns) == list(frame.columns)


def test_split_shares_values_with_weights_below_one():
    frame = pd.DataFrame({"code": ["1850", "1507"], "year": [2019, 2021], "n": [1000.0, 1000.0]})
    out = harmonise(frame, code_column="code", year_column="year", value_columns=["n"])
    got = out.set_index(["code", "year"])["n"]
    # Tysfjord (1850) was split between Narvik (1806) and Hamarøy (1875) in 2020.
    assert 0 < got[("1806", 2019)] < 1000
    assert got[("1806", 2019)] + got[("1875", 2019)] == pytest.approx(1000.0)
    # Ålesund of 2020-2023 (1507) was split into Ålesund (1508) and Haram (1580) in 2024;
    # Haram had about 14 % of the people, not half.
    assert got[("1580", 2021)] == pytest.approx(143.0, abs=15)
    assert got[("1508", 2021)] + got[("1580", 2021)] == pytest.approx(1000.0)


def test_unknown_code_error_names_code_year_and_remedy():
    frame = pd.DataFrame({"code": ["0301", "2111"], "n": [1, 2]})
    with pytest.raises(UnknownMunicipalityCodeError) as info:
        harmonise(frame, code_column="code", year=2019, value_columns=["n"])
    message = str(info.value)
    assert "2111 in 2019" in message
    assert "drop_unknown=True" in message


def test_code_used_in_the_wrong_year_is_unknown():
    frame = pd.DataFrame({"code": ["3001"], "n": [1]})  # Halden's 2020 code, used in 2019
    with pytest.raises(UnknownMunicipalityCodeError, match="3001 in 2019"):
        harmonise(frame, code_column="code", year=2019, value_columns=["n"])


def test_drop_unknown_lists_dropped_codes():
    frame = pd.DataFrame({"code": ["0301", "2111", "9999"], "n": [1, 2, 3]})
    out = harmonise(frame, code_column="code", year=2019, value_columns=["n"], drop_unknown=True)
    assert out["code"].tolist() == ["0301"]
    assert out.attrs["dropped"] == [("2111", 2019), ("9999", 2019)]


def test_integer_codes_are_zero_padded_and_late_years_use_current_codes():
    frame = pd.DataFrame({"code": [301, 3201], "n": [5, 6]})
    out = harmonise(frame, code_column="code", year=2026, value_columns=["n"])
    assert out["code"].tolist() == ["0301", "3201"]
    assert normalise_codes(pd.Series([301, "42", " 0301 "])).tolist() == ["0301", "0042", "0301"]


def test_bad_arguments():
    frame = pd.DataFrame({"code": ["0301"], "year": [2019], "n": [1]})
    with pytest.raises(ValueError, match="exactly one"):
        harmonise(frame, code_column="code", value_columns=["n"])
    with pytest.raises(ValueError, match="exactly one"):
        harmonise(frame, code_column="code", year_column="year", year=2019, value_columns=["n"])
    with pytest.raises(ValueError, match="not in the frame"):
        harmonise(frame, code_column="kommune", year=2019, value_columns=["n"])
    with pytest.raises(ValueError, match="before 2000"):
        harmonise(frame, code_column="code", year=1995, value_columns=["n"])
    with pytest.raises(ValueError, match="target_vintage"):
        harmonise(frame, code_column="code", year=2019, value_columns=["n"], target_vintage=2020)


def test_missing_values_stay_missing():
    frame = pd.DataFrame({"code": ["0301", "3201"], "n": [float("nan"), 1.0]})
    out = harmonise(frame, code_column="code", year=2024, value_columns=["n"])
    assert out.set_index("code")["n"].isna().tolist() == [True, False]


def test_code_table_is_consistent():
    table = code_table()
    assert list(table.columns) == ["original_code", "year", "code_2024", "weight"]
    assert table["year"].between(2000, 2024).all()
    sums = table.groupby(["original_code", "year"])["weight"].sum()
    assert (sums - 1).abs().max() < 1e-9
    assert not table.duplicated(["original_code", "year", "code_2024"]).any()
    current = table[table["year"] == 2024]
    assert len(current) == 357
    assert (current["original_code"] == current["code_2024"]).all()
    assert set(table["code_2024"]) == set(current["code_2024"])
    # The shipped file stays small.
    assert table.memory_usage(deep=True).sum() < 3e6


def test_municipality_table():
    table = municipality_table()
    assert len(table) == 357
    assert table.index.is_unique and table.index.is_monotonic_increasing
    assert {"name", "county", "region", "region_name", "centrality"} <= set(table.columns)
    assert table.loc["0301", "centrality"] == 1000
    assert table.loc["3201", "region"] == table.loc["0301", "region"]
    assert (table.index.str[:2] == table["county"]).all()
