"""Build the embedded default panel from the real source files.

Usage::

    python -m vekst.data.build --source /path/to/real --out data/vekst_default.nc

``--source`` is the folder laid out as described in its ``PROVENANCE.md`` (``csdata/``,
``hmd_hfd_vital/``, ``ssb_pendling_app/``, ``valg_analyser/``). Besides the panel the build
writes the two small tables shipped next to it: ``municipality_codes.csv`` (code mapping
used by :func:`vekst.data.codes.harmonise`) and ``national_population.csv`` (national
totals used to check the municipal sums). Everything here is deterministic: the same
sources give byte-identical outputs (no build date is recorded).

See ``data/README.md`` for what every variable is and every decision taken.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import xarray as xr

from vekst.data import components
from vekst.data.border_transfers import MOVED_ATTRIBUTE
from vekst.data.build_sources import (  # noqa: F401 - re-exported
    CODE_VINTAGE,
    DATA_VERSION,
    FLOAT_DIGITS,
    HFD_CITATION,
    HMD_CITATION,
    SSB_LICENCE,
    YEARS,
    BuildLog,
    SourceFileError,
    _attrs,
    _round_preserving_total,
    build_code_table,
    municipality_coords,
    read_commuting,
    read_employment,
    read_population,
)
from vekst.data.build_vital import (
    kannisto_old_age,
    read_births,
    read_fertility,
    read_mortality,
)
from vekst.data.panel import validate_panel
from vekst.io import atomic_write

__all__ = [
    "DATA_VERSION",
    "SourceFileError",
    "build_code_table",
    "build_panel",
    "kannisto_old_age",
    "main",
    "write_panel",
]

SPLIT_MUNICIPALITIES = ("1508", "1580", "1806", "1875", "5055", "5056", "5059")


def build_panel(source: str | Path) -> tuple[xr.Dataset, dict[str, pd.DataFrame], BuildLog]:
    """Assemble the default panel from the real source folder.

    Parameters
    ----------
    source
        The real-data folder (``csdata/``, ``hmd_hfd_vital/``, ``ssb_pendling_app/``,
        ``valg_analyser/``).

    Returns
    -------
    tuple
        The validated panel, the tables to ship beside it
        (``{"municipality_codes.csv": ..., "national_population.csv": ...}``) and a log of
        the numbers worth reporting.
    """
    source = Path(source)
    log = BuildLog()
    table = build_code_table(source)
    coords = municipality_coords(source, table)
    codes = pd.Index(coords.index.to_numpy(), name="municipality")

    population, national = read_population(source, codes, log)
    employment = read_employment(source, codes, table, log)
    commuting = read_commuting(source, codes, table, log)
    mortality_history = read_mortality(source, log)
    fertility_history = read_fertility(source)
    births_national = read_births(source)
    srb = births_national.sel(sex="male") / births_national.sel(sex="female")

    mortality = (
        mortality_history.rename(hist_year="year")
        .reindex(year=YEARS)
        .transpose("age", "sex", "year")
    )
    fertility = fertility_history.rename(hist_year="year").reindex(year=YEARS)

    csdata = "csdata (niphr/csdata, FHI) from SSB table 07459"
    pendling = "SSB via statisticsnorway/pendling (Shiny app data)"
    split_note = (
        "mapped to 2024 codes with the code table (data/municipality_codes.csv); merged "
        "municipalities are exact sums, the municipalities split across reforms "
        f"({', '.join(SPLIT_MUNICIPALITIES)}) get population-weighted shares, so their cells "
        "are estimates and may be fractional; all other cells are whole observed counts"
    )
    variables = {
        "population": (
            population,
            _attrs(
                "stock",
                "persons",
                False,
                f"{csdata}; 2024 borders",
                "resident population on 1 January by single year of age (105 = 105+) and sex",
                imputed=(
                    "1160 Vindafjord and 1576 Aure in 2005 (formed 2006-01-01; no 2005 rows in "
                    "the source): SSB 2024-border totals distributed over age and sex by the "
                    "national shortfall and their 2006 profile carried back one year; "
                    "1508 Ålesund / 1580 Haram in all years: csdata splits them 50/50, "
                    "re-split by SSB population shares (Haram share held at its 2019 value "
                    "in 2020-2022), same age-sex profile for both; "
                    "the years before five border transfers (Sandefjord to Tønsberg 2017, "
                    "Midt-Telemark to Notodden, Lillestrøm to Nes and Kinn to Stad 2020, "
                    "Rauma to Vestnes 2021) "
                    "moved onto the 2024 borders: each area's residents (published, or the "
                    "panel's mirrored jumps where the published number was approximate) as a "
                    "fixed share of every cell of the municipality that lost it "
                    "(vekst.data.border_transfers.KNOWN_TRANSFERS)"
                ),
                **{MOVED_ATTRIBUTE: population.attrs.get(MOVED_ATTRIBUTE)},
            ),
        ),
        "employed_workplace": (
            employment["employed_workplace"],
            _attrs(
                "flow",
                "persons",
                True,
                f"{pendling}, table 11618",
                "employed persons aged 15-74 by municipality of work, 4th quarter",
                note=split_note,
            ),
        ),
        "employed_residence": (
            employment["employed_residence"],
            _attrs(
                "flow",
                "persons",
                True,
                f"{pendling}, table 11618",
                "employed persons aged 15-74 by municipality of residence, 4th quarter "
                "(includes those working on the continental shelf, Svalbard or unknown)",
                note=split_note,
            ),
        ),
        "population_15_74_q4": (
            employment["population_15_74_q4"],
            _attrs(
                "flow",
                "persons",
                True,
                f"{pendling}, table 11618",
                "resident population aged 15-74 in the 4th quarter (denominator of the "
                "employment rate; stored by calendar year like employment, not a 1 January "
                "stock)",
                note=split_note,
            ),
        ),
        "commuting": (
            commuting,
            _attrs(
                "flow",
                "persons",
                True,
                f"{pendling}, table 03321",
                "employed persons aged 15-74 living in 'municipality' and working in "
                "'work_municipality', 4th quarter (diagonal: living and working in the same "
                "municipality); 0 = no flow; NaN = year without data",
                note=split_note
                + "; the source already excludes work on Svalbard, the continental shelf and "
                "unknown workplaces",
            ),
        ),
        "mortality_rate": (
            mortality,
            _attrs(
                "rate",
                "deaths per person-year",
                False,
                HMD_CITATION,
                "national central death rate m(x), Lexis squares; NaN in 2022 (the HMD copy "
                "ends in 2021); ages 100-105+ from a Kannisto fit (see mortality_rate_history)",
            ),
        ),
        "mortality_rate_history": (
            mortality_history,
            _attrs(
                "rate",
                "deaths per person-year",
                False,
                HMD_CITATION,
                "national central death rate m(x) 1950-2021 (HMD Mx_1x1); ages 0-99 as "
                "published; ages 100-104 and the open group 105+ from a Kannisto (logistic) "
                "Poisson fit to deaths and exposures at ages 80-109 of the same year and sex "
                "(raw rates there rest on a handful of deaths and can exceed 1); the open "
                "group rate is the fitted mean hazard of a stationary population aged 105+",
            ),
        ),
        "fertility_rate": (
            fertility,
            _attrs(
                "rate",
                "births per woman-year",
                False,
                HFD_CITATION,
                "national age-specific fertility rate (HFD period ASFR, Lexis squares); the "
                "'12-' group at age 12, '55+' at 55, zero at other ages; NaN in 2022",
            ),
        ),
        "fertility_rate_history": (
            fertility_history,
            _attrs(
                "rate",
                "births per woman-year",
                False,
                HFD_CITATION,
                "national ASFR by hist_year; NaN before 1967 (HFD starts in 1967)",
            ),
        ),
        "births_national": (
            births_national,
            _attrs(
                "flow",
                "persons",
                False,
                HMD_CITATION,
                "national live births in the calendar year by sex (HMD Births.txt)",
            ),
        ),
        "sex_ratio_at_birth": (
            srb,
            _attrs(
                "share",
                "boys per girl",
                False,
                HMD_CITATION,
                "national live male births / live female births in the calendar year",
            ),
        ),
    }
    data_vars = {}
    for name, (da, attrs) in variables.items():
        da = da.drop_vars([c for c in da.coords if c not in da.dims], errors="ignore")
        da = da.copy()
        da.attrs = attrs
        data_vars[name] = da
    panel = xr.Dataset(data_vars)
    panel = panel.assign_coords(
        name=("municipality", coords["name"].to_numpy().astype(str)),
        county=("municipality", coords["county"].to_numpy().astype(str)),
        county_name=("municipality", coords["county_name"].to_numpy().astype(str)),
        region=("municipality", coords["region"].to_numpy().astype(str)),
        region_name=("municipality", coords["region_name"].to_numpy().astype(str)),
        centrality=("municipality", coords["centrality"].to_numpy(float)),
    )
    panel["municipality"] = panel["municipality"].astype(str)
    panel["work_municipality"] = panel["work_municipality"].astype(str)
    panel["centrality"].attrs = {
        "units": "index 0-1000",
        "source": "SSB Klass 128 'Standard for sentralitet' (2017-based index), via "
        "oystess/valg_analyser",
        "description": "SSB centrality index (1000 = Oslo); classes 1 (925-1000) to 6 (0-564)",
    }
    panel["region"].attrs = {
        "description": "BA-region (bo- og arbeidsmarkedsregion, Gundersen & Juvkam 2013, "
        "2024 file), 3-digit code",
        "source": "csdata baregioner_2024.xlsx",
    }
    panel["hist_year"].attrs = {"description": "calendar year of the national histories"}
    panel["year"].attrs = {"description": "calendar year; stocks on 1 January"}
    panel["age"].attrs = {"description": "completed years; 105 = 105 and over"}
    panel.attrs = {
        "title": "vekst default panel: Norwegian municipalities on 2024 codes",
        "vekst_data_version": DATA_VERSION,
        "code_vintage": CODE_VINTAGE,
        "stock_timing": "1 January",
        "flow_timing": "calendar year",
        "sources": (
            "Statistics Norway (SSB) tables 07459 (population, via niphr/csdata), 03321 and "
            "11618 (commuting and employment, via statisticsnorway/pendling), Klass 128 "
            "(centrality), BA-regions 2024 (via csdata); Human Mortality Database (Mx_1x1, "
            "Deaths_1x1, Population, Births); Human Fertility Database (NORasfrRR). "
            "Details: data/README.md"
        ),
        "licence": f"{SSB_LICENCE}. {HMD_CITATION}. {HFD_CITATION}.",
        "derived_on_load": (
            "births (proxy), net_migration, net_migration_total: computed by "
            "vekst.data.components.add_derived_components when the panel is loaded with "
            "vekst.load_default(), so that they match the stored population and rates exactly"
        ),
        "lacks": (
            "observed municipal births, deaths and migration (births and net migration are "
            "derived); employment and commuting before 2017; rates for 2022"
        ),
    }
    validate_panel(
        components.add_derived_components(panel), code_vintage=CODE_VINTAGE, source="build"
    )
    tables = {
        "municipality_codes.csv": table,
        "national_population.csv": national,
    }
    return panel, tables, log


def _encoding(panel: xr.Dataset) -> dict[str, dict]:
    encoding: dict[str, dict] = {}
    for name, da in panel.data_vars.items():
        spec: dict[str, object] = {"zlib": True, "complevel": 6, "shuffle": True}
        if name == "population":
            spec["dtype"] = "int32"
        elif da.attrs.get("kind") == "rate" or name == "sex_ratio_at_birth":
            # Rates stay float64: derived components are recomputed from them on load.
            spec["dtype"] = "float64"
        elif da.dtype.kind == "f":
            # Float32 keeps ~7 significant digits: enough for counts up to 10^6 rounded to
            # 0.1 person and for rates; rounding first makes the bytes compress well.
            spec["dtype"] = "float32"
        encoding[str(name)] = spec
    return encoding


def _round_floats(panel: xr.Dataset) -> xr.Dataset:
    out = panel.copy()
    for name in ("commuting", "employed_workplace", "employed_residence", "population_15_74_q4"):
        attrs = out[name].attrs
        out[name] = out[name].round(FLOAT_DIGITS)
        out[name].attrs = attrs
    return out


def write_panel(panel: xr.Dataset, out: str | Path) -> Path:
    """Write ``panel`` to netCDF (h5netcdf, zlib) atomically.

    Parameters
    ----------
    panel
        The panel to write.
    out
        Target file; written to a temporary file in the same folder, then renamed.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    return atomic_write(
        out, lambda tmp: panel.to_netcdf(tmp, engine="h5netcdf", encoding=_encoding(panel))
    )


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n"))


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (``python -m vekst.data.build``)."""
    parser = argparse.ArgumentParser(
        prog="python -m vekst.data.build",
        description="Build the embedded default panel of vekst from the real source files.",
    )
    parser.add_argument("--source", required=True, type=Path, help="real-data folder")
    parser.add_argument("--out", required=True, type=Path, help="panel file to write (.nc)")
    parser.add_argument(
        "--tables-dir",
        type=Path,
        default=None,
        help="folder for municipality_codes.csv and national_population.csv "
        "(default: the folder of --out)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        panel, tables, log = build_panel(args.source)
    except (SourceFileError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    panel = _round_floats(panel)
    validate_panel(
        components.add_derived_components(panel),
        code_vintage=CODE_VINTAGE,
        source=str(args.out),
    )
    path = write_panel(panel, args.out)
    tables_dir = args.tables_dir or path.parent
    for name, frame in tables.items():
        _write_csv(frame, tables_dir / name)
    seconds = time.perf_counter() - started
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) in {seconds:.1f} s")
    for key, value in log.notes.items():
        print(f"  {key}: {value}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
