"""Summaries and files of a projection.

Quantiles are always taken **last**: to summarise a region, county or the nation, the
municipalities are summed draw by draw and the quantiles are computed over those sums.
Adding municipal medians would not give the median of the sum (and adding municipal 10 %
quantiles would give a band far too wide, as if every place were unlucky at once).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from vekst.errors import InputError
from vekst.io import atomic_folder, atomic_write

__all__ = [
    "QUANTILES",
    "CsvStyle",
    "age_group_summary",
    "aggregate",
    "convergence_flag",
    "data_dictionary",
    "frame_to_csv",
    "national_label",
    "population_summary",
    "quantile_frame",
    "write_projection_files",
]

#: Quantiles of every summary and their column names.
QUANTILES: tuple[tuple[str, float], ...] = (
    ("q025", 0.025),
    ("q10", 0.10),
    ("q50", 0.50),
    ("q90", 0.90),
    ("q975", 0.975),
)
GROUPINGS = ("region", "county", "nation")
#: A projection of at least this many municipalities covers Norway (357 in 2024).
FULL_COUNTRY_MUNICIPALITIES = 350
#: Files :func:`write_projection_files` may write (an output folder holding only these is replaced).
#: Variance by source (``vekst project --by-source``), netCDF for the report and CSV.
UNCERTAINTY_FILE = "uncertainty_by_source.nc"
UNCERTAINTY_TABLE = "uncertainty_by_source.csv"

OUTPUT_FILES: tuple[str, ...] = (
    "projection.nc",
    "projection.zarr",
    UNCERTAINTY_FILE,
    UNCERTAINTY_TABLE,
    "population_summary.csv",
    "age_groups.csv",
    "data_dictionary.csv",
    *(f"{by}.csv" for by in GROUPINGS),
)


class ProjectionOutputError(InputError):
    """A projection lacks what a summary needs; the message says what to rerun."""


def quantile_frame(values: xr.DataArray, index: Sequence[str]) -> pd.DataFrame:
    """Mean and quantiles over ``draw`` as a long frame with the other dims as columns.

    Parameters
    ----------
    values
        A DataArray with a ``draw`` dim.
    index
        Order of the label columns (the remaining dims).
    """
    if "draw" not in values.dims:
        raise ProjectionOutputError(f"'{values.name}' has no 'draw' dimension to summarise.")
    values = values.transpose("draw", *index)
    data = np.asarray(values.values)
    flat = data.reshape(data.shape[0], -1)
    levels = np.array([q for _, q in QUANTILES])
    stats = np.empty((1 + len(levels), flat.shape[1]))
    # Blocks of columns bound the float64 copies np.quantile makes (1000 draws of every
    # municipality, year and age group would otherwise need several GB at once).
    step = max(1, 2**24 // max(flat.shape[0], 1))
    for start in range(0, flat.shape[1], step):
        block = np.asarray(flat[:, start : start + step], dtype=np.float64)
        stats[0, start : start + step] = block.mean(0)
        stats[1:, start : start + step] = np.quantile(block, levels, axis=0)
    labels = np.meshgrid(*[values[d].values for d in index], indexing="ij")
    frame = pd.DataFrame({d: label.ravel() for d, label in zip(index, labels, strict=True)})
    frame["mean"] = stats[0]
    for row, (name, _) in enumerate(QUANTILES, start=1):
        frame[name] = stats[row]
    return frame


def _totals(projection: xr.Dataset) -> xr.DataArray:
    if "population_total" in projection:
        return projection["population_total"]
    if "population" in projection:
        return projection["population"].sum(("age", "sex"), dtype=np.float64)
    raise ProjectionOutputError(
        "the projection has neither 'population_total' nor 'population'; rerun "
        "vekst.projection.project."
    )


def _names(projection: xr.Dataset) -> dict[str, str]:
    codes = projection["municipality"].values.astype(str)
    if "name" in projection.coords:
        return dict(zip(codes, projection["name"].values.astype(str), strict=True))
    return {c: c for c in codes}


def population_summary(projection: xr.Dataset) -> pd.DataFrame:
    """Total population by municipality and year: mean and quantiles over draws.

    Returns
    -------
    pandas.DataFrame
        Columns ``municipality, name, year, mean, q025, q10, q50, q90, q975``.
    """
    totals = _totals(projection).reset_coords(drop=True)
    frame = quantile_frame(totals, ["municipality", "year"])
    frame.insert(1, "name", frame["municipality"].map(_names(projection)))
    return frame


def _group_cells(population: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``(draw, year, municipality, age, sex)`` -> ``(draw, year, municipality, group)``.

    Both sexes of an age go to the same group: one (age x sex, group) matrix, so a single
    float32 matrix product over the flat cells does the grouping.
    """
    flat = population.reshape(-1, matrix.shape[0])
    grouped = (flat @ matrix.astype(population.dtype)).astype(np.float64)
    return grouped.reshape(*population.shape[:3], matrix.shape[1])


def _age_groups(projection: xr.Dataset) -> xr.DataArray:
    """Population by ``age_group`` (both sexes), ``(draw, municipality, year, age_group)``."""
    from vekst.projection.project import AGE_GROUPS, age_group_matrix

    labels = [label for label, _, _ in AGE_GROUPS]
    if "population_age_group" in projection:
        # Grouped as the stocks were computed (a Zarr store written by project_to_zarr
        # keeps both): no need to read the single ages back.
        return projection["population_age_group"].reset_coords(drop=True)
    if "population" in projection:
        dims = ("draw", "year", "municipality", "age", "sex")
        stock = projection["population"].transpose(*dims)
        matrix = np.repeat(age_group_matrix(projection["age"].values), 2, axis=0)
        n_draw, n_year, n_mun = stock.shape[:3]
        # (draw, municipality, year, group): the order the summaries read, so quantile_frame
        # reshapes without a copy (583 MB at 1000 draws of the country).
        grouped = np.empty((n_draw, n_mun, n_year, matrix.shape[1]))
        if stock.chunks is not None and all(len(c) == 1 for c in stock.chunks[3:]):
            # A lazily opened (Zarr) projection: each stored chunk is read once and grouped
            # on its own, straight into the result (1000 draws of single ages are 5 GiB).
            import dask.array

            lazy = stock.data.map_blocks(
                _group_cells,
                matrix,
                drop_axis=4,
                chunks=(*stock.chunks[:3], (matrix.shape[1],)),
                dtype=np.float64,
            )
            dask.array.store(lazy.transpose(0, 2, 1, 3), grouped, lock=False)
        else:
            # Blocks of draws bound the float32 copies of a lazy array chunked otherwise.
            step = max(1, 2**25 // max(int(np.prod(stock.shape[1:])), 1))
            for start in range(0, n_draw, step):
                block = _group_cells(np.asarray(stock[start : start + step].values), matrix)
                grouped[start : start + step] = block.transpose(0, 2, 1, 3)
        return xr.DataArray(
            grouped,
            dims=("draw", "municipality", "year", "age_group"),
            coords={
                "draw": projection["draw"].values,
                "year": projection["year"].values,
                "municipality": projection["municipality"].values,
                "age_group": labels,
            },
        )
    raise ProjectionOutputError(
        "the projection keeps neither single ages nor age groups (detail='totals'); rerun "
        "project(..., detail='full' or 'age_groups')."
    )


def age_group_summary(projection: xr.Dataset) -> pd.DataFrame:
    """Population by municipality, year and age group (both sexes), over draws.

    Age groups: 0, 1-5, 6-12, 13-15, 16-19, 20-29, 30-49, 50-66, 67-79, 80-84, 85-89, 90+.

    Returns
    -------
    pandas.DataFrame
        Columns ``municipality, name, year, age_group, mean, q025, q10, q50, q90, q975``.
    """
    grouped = _age_groups(projection)
    frame = quantile_frame(grouped, ["municipality", "year", "age_group"])
    frame.insert(1, "name", frame["municipality"].map(_names(projection)))
    return frame


def aggregate(
    projection: xr.Dataset,
    by: str = "nation",
    *,
    age_groups: bool = False,
) -> pd.DataFrame:
    """Population of regions, counties or the nation: draws summed first, quantiles after.

    Parameters
    ----------
    projection
        Output of :func:`vekst.projection.project`.
    by
        ``"region"``, ``"county"`` or ``"nation"``.
    age_groups
        Summarise by age group too.

    Returns
    -------
    pandas.DataFrame
        Columns ``<by>, name, year, [age_group,] mean, q025, q10, q50, q90, q975``
        (``name`` is the region name where the projection has ``region_name``).
    """
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {GROUPINGS}, not {by!r}.")
    values = _age_groups(projection) if age_groups else _totals(projection).reset_coords(drop=True)
    if by == "nation":
        keys = np.array(["nation"] * projection.sizes["municipality"])
    else:
        if by not in projection.coords:
            raise ProjectionOutputError(
                f"the projection has no '{by}' coordinate on 'municipality'; project a panel "
                f"that carries it."
            )
        keys = projection[by].values.astype(str)
    labels = list(dict.fromkeys(keys))
    member = np.array([[k == label for k in keys] for label in labels], dtype=np.float64)
    ordered = values.transpose("municipality", ...)
    # Sum within each group for every draw (a matrix product over municipalities).
    summed = np.tensordot(member, np.asarray(ordered.values, dtype=np.float64), axes=(1, 0))
    other = [d for d in ordered.dims if d != "municipality"]
    grouped = xr.DataArray(
        summed,
        dims=(by, *other),
        coords={by: labels, **{d: ordered[d].values for d in other}},
    )
    index = [by, "year", *(["age_group"] if age_groups else [])]
    frame = quantile_frame(grouped, index)
    names = {label: label for label in labels}
    if by == "region" and "region_name" in projection.coords:
        names = dict(
            zip(keys, projection["region_name"].values.astype(str), strict=True)
        )
    elif by == "county":
        names = {**names, **_county_names(projection)}
    elif by == "nation":
        names = {"nation": national_label(projection)}
    frame.insert(1, "name", frame[by].map(names))
    return frame


def _encoding(projection: xr.Dataset) -> dict:
    """gzip level 1 with byte shuffling for the small variables; none for ``population``.

    Projected counts are float32 with busy mantissas, so gzip gains little on the big
    single-age array and costs most of the write: the demo's 250 draws x 19 years x 357
    municipalities took 27.1 s to write at level 1 with shuffle (1,067 MB) against 1-2 s
    uncompressed (1,371 MB), and reading one municipality back took 2.6 s against 0.07 s
    (``population`` alone, same machine, one run). Higher gzip levels took 2.5x longer
    again for 1 % smaller files. gzip keeps the small variables readable by every
    netCDF-4 reader (LZF would not be).
    """
    encoding: dict[str, dict] = {}
    for name, variable in projection.data_vars.items():
        if name == "population":
            sizes = variable.shape
            encoding[str(name)] = {"chunksizes": (min(sizes[0], 50), 1, *sizes[2:])}
        else:
            encoding[str(name)] = {"zlib": True, "complevel": 1, "shuffle": True}
    return encoding


def national_label(projection: xr.Dataset) -> str:
    """``"Norway"`` for a projection of (nearly) every municipality, else what it is.

    A sum over six municipalities labelled "Norway" would be read as a national forecast.
    """
    count = projection.sizes["municipality"]
    return "Norway" if count >= FULL_COUNTRY_MUNICIPALITIES else f"all {count} municipalities"


def convergence_flag(projection: xr.Dataset) -> str:
    """``"yes"``, ``"no"`` or ``"unknown"`` from ``attrs["converged"]`` (which callers
    set as "yes"/"no", 1/0 or True/False)."""
    value = projection.attrs.get("converged")
    if isinstance(value, str):
        value = value.strip().lower()
    if value in ("yes", "true", "1", 1, True):
        return "yes"
    if value in ("no", "false", "0", 0, False):
        return "no"
    return "unknown"


@dataclass(frozen=True)
class CsvStyle:
    """How CSV files are written.

    Every file is UTF-8 with a byte-order mark (so Excel on Windows shows "Bærum", not
    "BÃ¦rum") and one header row. The default uses ``,`` and a decimal point;
    :meth:`norwegian` gives ``;`` and a decimal comma, which a Norwegian Excel opens in
    columns with a double click.

    Attributes
    ----------
    sep
        Field separator.
    decimal
        Decimal mark.
    """

    sep: str = ","
    decimal: str = "."

    def __post_init__(self) -> None:
        if self.sep == self.decimal:
            raise ValueError(
                f"the CSV separator and decimal mark are both {self.sep!r}; use ';' with ','."
            )

    @classmethod
    def norwegian(cls) -> CsvStyle:
        """``;`` between fields and a decimal comma (Excel with Norwegian settings)."""
        return cls(sep=";", decimal=",")

    @classmethod
    def named(cls, name: str) -> CsvStyle:
        """The style called ``"nb"`` (``;`` and ``,``) or ``"en"`` (``,`` and ``.``)."""
        styles = {"nb": cls.norwegian(), "en": cls()}
        if name not in styles:
            raise ValueError(f"unknown CSV style {name!r}; use 'nb' or 'en'.")
        return styles[name]


#: Columns holding persons; rounded to whole persons in the CSV files.
PERSON_COLUMNS = ("mean", "q025", "q10", "q50", "q90", "q975")

#: Column -> meaning, for the data dictionary written beside the CSV files.
COLUMN_MEANINGS: dict[str, str] = {
    "municipality": "Municipality number (2024 codes), text with leading zero, e.g. 0301",
    "county": "County number (2024), text with leading zero, e.g. 03",
    "region": "Labour-market region code (SSB's BA regions)",
    "nation": "The whole country",
    "name": "Name of the municipality, county, region or country",
    "year": "Population on 1 January of this year",
    "age_group": "Age group in completed years (90+ is 90 and older)",
    "mean": "Mean over the simulated futures (persons)",
    "q025": "2.5 % quantile: lower end of the 95 % band (persons)",
    "q10": "10 % quantile: lower end of the 80 % band (persons)",
    "q50": "Median: half of the simulated futures are above, half below (persons)",
    "q90": "90 % quantile: upper end of the 80 % band (persons)",
    "q975": "97.5 % quantile: upper end of the 95 % band (persons)",
    "converged": "yes/no: whether the model fit passed its convergence gate",
}


def _county_names(projection: xr.Dataset) -> dict[str, str]:
    """County code -> name from the projection, else from the embedded 2024 table."""
    if "county_name" in projection.coords and "county" in projection.coords:
        return dict(
            zip(
                projection["county"].values.astype(str),
                projection["county_name"].values.astype(str),
                strict=True,
            )
        )
    try:
        from vekst.data.codes import municipality_table

        table = municipality_table()
    except (OSError, ImportError, KeyError):
        return {}
    if "county_name" not in table:
        return {}
    return dict(zip(table["county"].astype(str), table["county_name"].astype(str), strict=True))


def frame_to_csv(frame: pd.DataFrame, path: str | Path, style: CsvStyle | None = None) -> Path:
    """Write ``frame`` (no index) as a CSV in ``style``, atomically, mode 0644.

    Parameters
    ----------
    frame
        A flat table with one header row.
    path
        Target file.
    style
        Separator and decimal mark; default :class:`CsvStyle` (``,`` and ``.``).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    style = style or CsvStyle()
    return atomic_write(
        path,
        lambda tmp: frame.to_csv(
            tmp, index=False, sep=style.sep, decimal=style.decimal, encoding="utf-8-sig"
        ),
    )


def _rounded(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in PERSON_COLUMNS:
        if column in frame:
            frame[column] = np.rint(frame[column].to_numpy(dtype=float)).astype("int64")
    return frame


def data_dictionary(files: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per file and column: what the column holds.

    Parameters
    ----------
    files
        ``{file name: frame written}``.

    Returns
    -------
    pandas.DataFrame
        Columns ``file, column, meaning``.
    """
    rows = [
        {"file": name, "column": column, "meaning": COLUMN_MEANINGS.get(column, "")}
        for name, frame in files.items()
        for column in frame.columns
    ]
    return pd.DataFrame(rows, columns=["file", "column", "meaning"])


def write_projection_files(
    projection: xr.Dataset,
    out_dir: str | Path,
    *,
    groupings: Iterable[str] = GROUPINGS,
    csv_style: CsvStyle | None = None,
    zarr_store: str | Path | None = None,
) -> dict[str, Path]:
    """Write the projection and its summaries.

    Files: ``projection.nc`` (h5netcdf; single ages uncompressed, the rest gzip) or
    ``projection.zarr``, ``population_summary.csv``,
    ``age_groups.csv`` (when the projection keeps ages), ``region.csv``, ``county.csv``,
    ``nation.csv`` (when the coordinate exists) and ``data_dictionary.csv`` (what every
    column means). CSV files are UTF-8 with a byte-order mark, one header row, codes as
    text (with their leading zeros), names filled in and persons rounded to whole numbers.
    Every file is written to a temporary file in ``out_dir`` and renamed (mode 0644), so
    a crash never leaves half a file and colleagues can read the results.

    Parameters
    ----------
    projection
        Output of :func:`vekst.projection.project`.
    out_dir
        Folder (created when missing).
    groupings
        Aggregates to write.
    csv_style
        Separator and decimal mark of the CSV files; :meth:`CsvStyle.norwegian` for
        Excel with Norwegian settings.
    zarr_store
        A Zarr store already holding ``projection`` (written by
        :func:`vekst.projection.zarr_store.project_to_zarr`, which ``projection`` may
        be opened from): moved into the folder as ``projection.zarr`` instead of writing
        ``projection.nc``. The summaries are computed before the move.

    Returns
    -------
    dict
        ``{file label: path}``.
    """
    out_dir = Path(out_dir)
    converged = convergence_flag(projection)
    encoding = _encoding(projection) if zarr_store is None else None
    frames: dict[str, pd.DataFrame] = {"population_summary": population_summary(projection)}
    if "population" in projection or "population_age_group" in projection:
        frames["age_groups"] = age_group_summary(projection)
    for by in groupings:
        if by == "nation" or by in projection.coords:
            frames[by] = aggregate(projection, by)
    # Every file carries the convergence flag, not only the netCDF's attrs.
    frames = {name: _rounded(frame).assign(converged=converged) for name, frame in frames.items()}
    dictionary = data_dictionary({f"{name}.csv": frame for name, frame in frames.items()})
    written: dict[str, Path] = {}
    # Summaries are computed first and the folder is swapped in whole at the end, so an
    # interrupted run leaves the previous outputs as they were and no stale file mixes in.
    with atomic_folder(out_dir, known=OUTPUT_FILES, manifest={"converged": converged}) as tmp:
        if zarr_store is None:
            projection.to_netcdf(tmp / "projection.nc", engine="h5netcdf", encoding=encoding)
            written["projection"] = out_dir / "projection.nc"
        else:
            # A rename when on the same file system (the CLI writes it beside out_dir).
            shutil.move(str(zarr_store), tmp / "projection.zarr")
            written["projection"] = out_dir / "projection.zarr"
        for name, frame in frames.items():
            frame_to_csv(frame, tmp / f"{name}.csv", csv_style)
            written[name] = out_dir / f"{name}.csv"
        frame_to_csv(
            dictionary.assign(converged=converged), tmp / "data_dictionary.csv", csv_style
        )
        written["data_dictionary"] = out_dir / "data_dictionary.csv"
    return written
