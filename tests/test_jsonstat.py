"""JSON-stat parsing on recorded SSB responses (2.0 and 1.0) and on malformed documents."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from vekst.data.jsonstat import STATUS_REASONS, JsonStatError, parse, parse_metadata

FIXTURES = Path(__file__).parent / "fixtures" / "ssb"
V2 = FIXTURES / "jsonstat2_05300.json"
V1 = FIXTURES / "jsonstat1_01222_2015K1.json"
TRIMMED = FIXTURES / "jsonstat1_01222_trimmed_inconsistent.json"


def _cell(frame, **codes):
    mask = np.ones(len(frame), dtype=bool)
    for column, code in codes.items():
        mask &= (frame[column] == code).to_numpy()
    assert mask.sum() == 1, codes
    return frame.loc[mask].iloc[0]


def test_jsonstat2_shape_and_known_values():
    dataset = parse(V2.read_bytes(), source=V2.name)
    assert dataset.version == "2.0"
    assert dataset.table_id == "05300"
    assert dataset.ids == ("Avstand1", "Kulturtilbud", "ContentsCode", "Tid")
    assert dataset.sizes == (6, 8, 1, 9)
    frame = dataset.to_frame()
    assert len(frame) == math.prod(dataset.sizes) == 432
    # Positions read by hand from the file (row-major over Avstand1, Kulturtilbud, Tid).
    assert _cell(frame, Avstand1="01", Kulturtilbud="01", Tid="1991").value == 16
    assert _cell(frame, Avstand1="01", Kulturtilbud="02", Tid="1991").value == 7
    assert _cell(frame, Avstand1="06", Kulturtilbud="08", Tid="2016").value == 2
    assert _cell(frame, Avstand1="01", Kulturtilbud="01", Tid="2021").value == 12


def test_jsonstat2_status_symbols_are_missing_with_reason():
    raw = json.loads(V2.read_text())
    frame = parse(raw).to_frame()
    not_applicable = _cell(frame, Avstand1="01", Kulturtilbud="08", Tid="2021")
    assert np.isnan(not_applicable.value)
    assert not_applicable.status == "."
    assert not_applicable.reason == "category not applicable"
    unavailable = _cell(frame, Avstand1="06", Kulturtilbud="01", Tid="1991")
    assert np.isnan(unavailable.value)
    assert unavailable.status == ".."
    assert unavailable.reason == STATUS_REASONS[".."] == "data not available"
    assert frame["status"].notna().sum() == len(raw["status"])
    # In this response every null value carries a status and no number does.
    np.testing.assert_array_equal(frame["value"].isna(), frame["status"].notna())


def test_labels_are_added_on_request():
    frame = parse(V2.read_bytes()).to_frame(labels=True)
    row = _cell(frame, Avstand1="06", Kulturtilbud="05", Tid="2000")
    assert row["Avstand1_label"] == "50 km eller over"
    assert row["Kulturtilbud_label"] == "Museum"


def test_jsonstat1_bundle_from_api_v0():
    dataset = parse(V1.read_text(), source=V1.name)
    assert dataset.version == "1.0"
    assert dataset.ids == ("Region", "ContentsCode", "Tid")
    frame = dataset.to_frame()
    assert len(frame) == 430 * 11 * 1
    stock = frame[frame["ContentsCode"] == "Folketallet1"]
    assert stock["value"].sum() == 5_165_802
    oslo = frame[frame["Region"] == "0301"].set_index("ContentsCode")["value"]
    assert oslo["Folketallet1"] == 647_676
    assert oslo["Fodte2"] == 2_359
    assert oslo["Folketallet11"] == 650_733
    flagged = frame[frame["status"].notna()]
    assert len(flagged) == 2
    assert set(flagged["status"]) == {"."}
    assert flagged["value"].isna().all()
    # Harstad and Bjarkøy merged in 2013; the end-of-quarter stock does not apply.
    assert set(flagged["Region"]) == {"1901", "1915"}
    assert set(flagged["ContentsCode"]) == {"Folketallet11"}


def test_trimmed_document_is_rejected_naming_dimension_and_sizes():
    with pytest.raises(JsonStatError) as error:
        parse(TRIMMED.read_text(), source=TRIMMED.name)
    message = str(error.value)
    assert "'Region'" in message
    assert "430" in message and "11" in message
    assert TRIMMED.name in message


def _tiny(**overrides):
    doc = {
        "version": "2.0",
        "class": "dataset",
        "id": ["A", "B"],
        "size": [2, 3],
        "dimension": {
            "A": {"label": "a", "category": {"index": {"x": 0, "y": 1}}},
            "B": {"label": "b", "category": {"index": ["p", "q", "r"]}},
        },
        "value": [0, 1, 2, 3, 4, 5],
    }
    doc.update(overrides)
    return doc


def test_row_major_order_and_array_index():
    frame = parse(_tiny()).to_frame()
    assert list(zip(frame["A"], frame["B"], frame["value"], strict=True)) == [
        ("x", "p", 0),
        ("x", "q", 1),
        ("x", "r", 2),
        ("y", "p", 3),
        ("y", "q", 4),
        ("y", "r", 5),
    ]


def test_index_object_order_is_respected():
    doc = _tiny()
    doc["dimension"]["A"]["category"]["index"] = {"y": 1, "x": 0}
    frame = parse(doc).to_frame()
    assert list(frame["A"][:3]) == ["x", "x", "x"]


def test_value_count_mismatch_is_rejected():
    with pytest.raises(JsonStatError, match="5 entries but the sizes multiply to 6"):
        parse(_tiny(value=[0, 1, 2, 3, 4]))


def test_sparse_values_and_status_list():
    frame = parse(_tiny(value={"1": 10, "4": 40}, status=[None, None, ":", None, None, None]))
    cells = frame.to_frame()
    assert cells["value"].isna().sum() == 4
    assert cells.loc[1, "value"] == 10 and cells.loc[4, "value"] == 40
    assert cells.loc[2, "status"] == ":" and cells.loc[2, "reason"] == "confidential"


def test_bad_index_positions_and_json():
    doc = _tiny()
    doc["dimension"]["A"]["category"]["index"] = {"x": 0, "y": 2}
    with pytest.raises(JsonStatError, match=r"positions must be 0\.\.1"):
        parse(doc)
    with pytest.raises(JsonStatError, match="not valid JSON"):
        parse(b'{"class": "dataset", "id": [')
    with pytest.raises(JsonStatError, match="not a JSON-stat dataset"):
        parse({"something": 1})


def test_metadata_document_has_dimensions_but_no_cells():
    meta = parse_metadata(_tiny(value=[]))
    assert meta.sizes == (2, 3)
    assert meta.values.size == 0
    assert meta.dimension("B").codes == ("p", "q", "r")
    with pytest.raises(JsonStatError, match="no cells to tabulate"):
        meta.to_frame()
    with pytest.raises(JsonStatError):
        parse(_tiny(value=[]))  # an empty value list is only fine for metadata
