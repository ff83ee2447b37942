"""Building blocks of the HTML report: inputs, figure store, tables, notes."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from vekst.errors import InputError
from vekst.io import atomic_write_bytes
from vekst.report import plots
from vekst.report.i18n import translate_figure

PYRAMID_YEARS: tuple[int, ...] = (2030, 2040)

#: Plain-language names of the migration covariates.
COVARIATE_LABELS: dict[str, str] = {
    "vra_0": "Job growth (VRA), same year",
    "vra_1": "VRA, one year before",
    "vra_2": "VRA, two years before",
    "centrality": "Centrality (index / 1000)",
    "ds": "Young people entering work (DS)",
    "housing_0": "Completed dwellings per 1,000, same year",
    "housing_1": "Completed dwellings per 1,000, year before",
}

DPI = 100

DECOMPOSITION_CAPTION = (
    "Green bars are births and deaths: what the age structure alone would give at "
    "national rates, and how far the place differs from that. Blue bars are net "
    "migration explained by national immigration, centrality, job growth (own and in "
    "neighbouring municipalities where residents commute) and young people entering the "
    "labour market (DS). The orange bar is attractiveness: migration the model cannot "
    "explain by these factors. Grey is what is left (noise). The dark bar is the total; "
    "the whiskers span the middle 80 % of the posterior."
)


class ReportInputError(InputError):
    """The inputs of the report do not fit together; the message says what to change."""


def covariate_label(name: str) -> str:
    """The plain-language name of a migration covariate (``vra_0`` -> job growth)."""
    if name in COVARIATE_LABELS:
        return COVARIATE_LABELS[name]
    match = re.fullmatch(r"vra_(own|neighbours)_(\d+)", name)
    if match:
        who = "own municipality" if match.group(1) == "own" else "neighbours"
        return f"Job growth, {who}, lag {match.group(2)}"
    return name


def coord_map(ds: xr.Dataset | xr.DataArray, key: str, value: str) -> dict[str, str]:
    """Map one coordinate on ``municipality`` to another (e.g. region -> region_name)."""
    if key == "municipality":
        keys = ds["municipality"].values.astype(str)
    elif key in ds.coords:
        keys = ds[key].values.astype(str)
    else:
        return {}
    if value not in ds.coords:
        return {}
    return dict(zip(keys, ds[value].values.astype(str), strict=True))


@dataclass
class FigureStore:
    """Writes figures as PNG files and keeps their base64 for embedding."""

    folder: Path
    dpi: int = DPI
    files: list[Path] = field(default_factory=list)
    lang: str = "en"

    def add(self, fig: Figure, name: str, alt: str, caption: str) -> dict[str, Any]:
        """Save ``fig`` as ``name.png`` and return the block that embeds it."""
        translate_figure(fig, self.lang)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=self.dpi)
        data = buffer.getvalue()
        # PNG header: width and height are big-endian integers at bytes 16-24.
        width = int.from_bytes(data[16:20], "big")
        height = int.from_bytes(data[20:24], "big")
        path = atomic_write_bytes(self.folder / f"{name}.png", data)
        self.files.append(path)
        return {
            "kind": "figure",
            "src": "data:image/png;base64," + base64.b64encode(data).decode("ascii"),
            "file": f"figures/{path.name}",
            "alt": alt,
            "caption": caption,
            "width": width,
            "height": height,
        }


def table_block(frame: pd.DataFrame, caption: str, csv: str | None = None) -> dict[str, Any]:
    """A table block of a section; the index becomes the first column (one header row)."""
    # The index becomes the first column so the table has a single header row.
    html = frame.reset_index().to_html(
        classes="data", border=0, escape=True, na_rep="–", index=False
    )
    # pandas writes inline styles on the header row; the page's CSS handles alignment.
    html = html.replace(' style="text-align: right;"', "")
    return {"kind": "table", "html": html, "caption": caption, "file": csv}


def note(text: str) -> dict[str, str]:
    """A note block of a section."""
    return {"kind": "note", "text": text}


# --------------------------------------------------------------------------- inputs


def projection_totals(projection: xr.Dataset) -> xr.DataArray:
    """Projected totals ``(draw, year, municipality)`` from a projection dataset."""
    if "population_total" in projection:
        return projection["population_total"]
    if "population" in projection:
        return projection["population"].sum(("age", "sex"), dtype=np.float64)
    raise ReportInputError(
        "the projection has neither 'population_total' nor 'population'; pass the dataset "
        "written by `vekst project` (projection.nc)."
    )


def base_year(projection: xr.Dataset) -> int:
    """The projection's base year (its first year when not recorded)."""
    if "base_year" in projection.attrs:
        return int(projection.attrs["base_year"])
    return int(projection["year"].values[0])


def default_municipalities(
    panel: xr.Dataset, projection: xr.Dataset, chosen: Iterable[str] | None = None, n: int = 3
) -> list[str]:
    """The ``n`` largest municipalities at the base year, followed by any chosen ones.

    Parameters
    ----------
    panel
        The panel (for the base-year population).
    projection
        The projection (its municipalities and base year).
    chosen
        Codes asked for by the user (4-digit strings).
    n
        How many of the largest to include.

    Returns
    -------
    list of str
        Codes without duplicates, the largest first.

    Raises
    ------
    ReportInputError
        If a chosen code is not in the projection.
    """
    codes = [str(c) for c in projection["municipality"].values]
    chosen = [str(c).strip().zfill(4) for c in (chosen or [])]
    unknown = [c for c in chosen if c not in codes]
    if unknown:
        raise ReportInputError(
            f"municipality code(s) {unknown} are not in the projection; use 4-digit codes of "
            f"the 2024 vintage (e.g. 0301 Oslo). The projection holds {len(codes)} "
            f"municipalities ({', '.join(codes[:5])}, ...)."
        )
    base = base_year(projection)
    sizes = projection_totals(projection).sel(year=base).median("draw")
    if "population" in panel and base in set(int(y) for y in panel["year"].values):
        observed = panel["population"].sel(year=base).sum(("age", "sex"))
        observed = observed.reindex(municipality=codes)
        sizes = observed.fillna(sizes)
    order = np.argsort(-np.asarray(sizes.values, dtype=float), kind="stable")
    largest = [codes[i] for i in order[:n]]
    return list(dict.fromkeys([*largest, *chosen]))


def read_diagnostics(idata: Any, diagnostics: Any) -> dict[str, Any] | None:
    """The fit's convergence diagnostics as a dict, or ``None`` when unknown."""
    if diagnostics is not None:
        if isinstance(diagnostics, str):
            return json.loads(diagnostics)
        if hasattr(diagnostics, "as_dict"):
            return diagnostics.as_dict()
        return dict(diagnostics)
    stored = getattr(idata, "attrs", {}).get("diagnostics")
    if stored:
        return json.loads(stored) if isinstance(stored, str) else dict(stored)
    try:
        from vekst.fit import diagnose

        return diagnose(idata).as_dict()
    except (KeyError, ValueError, AttributeError, TypeError):
        return None


def truthy(value: Any) -> bool:
    """Whether an attribute value means yes (``1``, ``true``, ``yes`` or a true value)."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


def decomposition_frame(decomposition: xr.Dataset | xr.DataArray, code: str) -> pd.DataFrame:
    """Average yearly contribution per component for one municipality (with ``total``)."""
    if isinstance(decomposition, xr.Dataset) and {"contribution", "growth"} <= set(
        decomposition.data_vars
    ):
        from vekst.decompose import decomposition_summary

        frame = decomposition_summary(decomposition.sel(municipality=[code]), by="municipality")
        return frame.set_index("component")[["mean", "q10", "q90"]]
    place = decomposition_array(decomposition).sel(municipality=code)
    return plots.driver_summary(place)


def decomposition_array(decomposition: xr.Dataset | xr.DataArray) -> xr.DataArray:
    """One DataArray (draw, component, municipality, year) from the decomposition."""
    if isinstance(decomposition, xr.DataArray):
        array = decomposition
    else:
        with_component = [
            name for name, var in decomposition.data_vars.items() if "component" in var.dims
        ]
        if with_component:
            preferred = [n for n in ("contribution", "decomposition") if n in with_component]
            array = decomposition[preferred[0] if preferred else with_component[0]]
        else:
            array = decomposition.to_dataarray("component")
    if "component" not in array.dims or "year" not in array.dims:
        raise ReportInputError(
            f"the decomposition needs dims (draw, component, municipality, year), got "
            f"{list(array.dims)}; pass the output of vekst.decompose."
        )
    return array




def write_csv(path: Path, frame: pd.DataFrame, lang: str = "en") -> Path:
    """Write a report table as CSV a spreadsheet opens correctly (BOM, one header row).

    Parameters
    ----------
    path
        Target file.
    frame
        A flat table (one header row); written without its index.
    lang
        ``"nb"``: ``;`` and a decimal comma (Excel with Norwegian settings); ``"en"``:
        ``,`` and a decimal point.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from vekst.projection.outputs import CsvStyle, frame_to_csv

    return frame_to_csv(frame, path, CsvStyle.named(str(lang)))


def tidy_age_table(table: pd.DataFrame) -> pd.DataFrame:
    """The age-group table in long form: ``age_group, year, mean, q10, q50, q90`` (persons).

    Parameters
    ----------
    table
        Output of :func:`vekst.report.tables.age_group_table` (columns ``(year, stat)``).

    Returns
    -------
    pandas.DataFrame
        ``age_group, year`` and the summary columns (``mean, q10, q50, q90``); one header
        row, persons rounded to whole numbers.
    """
    long = table.stack(level="year", future_stack=True).reset_index()
    # Column names a spreadsheet formula or pandas can address without quoting.
    long.columns = [str(c).replace(" ", "_") for c in long.columns]
    for column in long.columns[2:]:
        long[column] = np.rint(long[column].astype(float)).astype("int64")
    return long
