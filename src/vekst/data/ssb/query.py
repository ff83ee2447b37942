"""Planning SSB queries: chunks under the cell limit, and a table spec resolved against
the table's metadata."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import product

from vekst.data.jsonstat import Dataset, Dimension
from vekst.data.ssb.errors import TableSpecError
from vekst.data.ssb_tables import CONTENTS_VARIABLE, Select, TableSpec


def plan_chunks(
    dimensions: Sequence[tuple[str, Sequence[str]]],
    max_cells: int,
    split_order: Sequence[str] = (),
) -> list[dict[str, tuple[str, ...]]]:
    """Split a query into chunks of at most ``max_cells`` cells.

    Dimensions are split in ``split_order`` (others are never split): the first one into
    consecutive runs of values as long as the rest allows, the next one only when even a
    single value of the first is too much, and so on. Runs start at the first value, so
    appending values (a new year) changes only the last chunk and cached chunks stay valid.

    Parameters
    ----------
    dimensions
        ``(variable, value codes)`` in query order.
    max_cells
        Most cells per chunk.
    split_order
        Variables that may be split, most preferred first.

    Returns
    -------
    list of dict
        Per chunk, the value codes of every variable (in ``dimensions`` order). Together
        the chunks cover every cell exactly once.

    Raises
    ------
    ValueError
        If no split fits (the unsplittable variables alone exceed ``max_cells``).
    """
    if max_cells < 1:
        raise ValueError("max_cells must be at least 1")
    sizes = {name: len(codes) for name, codes in dimensions}
    if any(size == 0 for size in sizes.values()):
        return []
    splittable = [name for name in split_order if name in sizes]
    run_length = dict(sizes)
    if math.prod(sizes.values()) > max_cells:
        undecided = list(splittable)
        decided_product = 1
        fixed = math.prod(sizes[name] for name in sizes if name not in splittable)
        while undecided:
            name = undecided.pop(0)
            rest = fixed * math.prod(sizes[other] for other in undecided)
            room = max_cells // (decided_product * rest) if decided_product * rest else 0
            if room >= sizes[name]:
                break
            run_length[name] = max(1, room)
            decided_product *= run_length[name]
            if room >= 1:
                break
        total = math.prod(run_length.values())
        if total > max_cells:
            raise ValueError(
                f"cannot split the query below {max_cells} cells: one value of each of "
                f"{splittable} still gives {total} cells; allow more variables in split_order"
            )
    runs: list[list[tuple[str, ...]]] = []
    for name, codes in dimensions:
        step = run_length[name]
        codes = tuple(codes)
        runs.append([codes[i : i + step] for i in range(0, len(codes), step)])
    names = [name for name, _ in dimensions]
    return [dict(zip(names, combo, strict=True)) for combo in product(*runs)]


# --------------------------------------------------------------------------------------
# Resolving a spec against metadata
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedQuery:
    """A :class:`TableSpec` matched against the table's current metadata.

    Attributes
    ----------
    spec
        The spec.
    dimensions
        ``(variable, value codes)`` for every variable in the query, in table order.
    codelists
        Code list per variable where the spec names one.
    contents
        ``ContentsCode`` value code -> column name.
    eliminated
        Variables left out of the query (SSB returns their elimination value).
    variables
        Spec variable name -> the table's variable code (they differ when a variable was
        found by label).
    """

    spec: TableSpec
    dimensions: tuple[tuple[str, tuple[str, ...]], ...]
    codelists: Mapping[str, str]
    contents: Mapping[str, str]
    eliminated: tuple[str, ...]
    variables: Mapping[str, str]

    @property
    def n_cells(self) -> int:
        """Cells in the whole query."""
        return math.prod(len(codes) for _, codes in self.dimensions)

    def codes(self, variable: str) -> tuple[str, ...]:
        """Selected value codes of ``variable`` (spec or table name)."""
        actual = self.variables.get(variable, variable)
        for name, codes in self.dimensions:
            if name == actual:
                return codes
        raise KeyError(f"{variable!r} is not in the query for table {self.spec.table_id}")


def _period_year(code: str, unit: str) -> int | None:
    pattern = r"(\d{4})" if unit == "year" else r"(\d{4})K[1-4]"
    match = re.fullmatch(pattern, code)
    return int(match.group(1)) if match else None


def _describe_values(dim: Dimension, limit: int = 12) -> str:
    pairs = [f"{c} ({lab})" for c, lab in zip(dim.codes, dim.labels, strict=True)]
    more = f" ... and {len(pairs) - limit} more" if len(pairs) > limit else ""
    return ", ".join(pairs[:limit]) + more


def _find_variable(spec: TableSpec, meta: Dataset, name: str, label: str | None) -> Dimension:
    if name in meta.ids:
        return meta.dimension(name)
    if label is not None:
        for dim in meta.dimensions:
            if dim.label.casefold() == label.casefold():
                return dim
    variables = ", ".join(f"{d.id} ({d.label})" for d in meta.dimensions)
    raise TableSpecError(
        f"table {spec.table_id} ({spec.key}): has no variable {name!r}"
        + (f" or variable labelled {label!r}" if label else "")
        + f"; it has {variables}. Update the spec in src/vekst/data/ssb_tables.py."
    )


def _select_values(spec: TableSpec, dim: Dimension, select: Select) -> tuple[str, ...]:
    if select.codelist is not None:
        # A code list has its own codes (e.g. "K-3103"), not in the table's value list.
        if not select.codes:
            raise TableSpecError(
                f"table {spec.table_id} ({spec.key}): variable {dim.id!r} uses code list "
                f"{select.codelist!r}; give its value codes explicitly in ssb_tables.py."
            )
        return tuple(select.codes)
    if select.codes:
        missing = [code for code in select.codes if code not in dim.codes]
        if missing:
            raise TableSpecError(
                f"table {spec.table_id} ({spec.key}): variable {dim.id!r} has no value(s) "
                f"{missing}; it has {_describe_values(dim)}. Update the spec in "
                "src/vekst/data/ssb_tables.py."
            )
        return tuple(select.codes)
    if select.every:
        chosen = dim.codes
    elif select.pattern is not None:
        chosen = tuple(code for code in dim.codes if re.fullmatch(select.pattern, code))
    else:
        regex = re.compile(select.label_pattern or "", re.IGNORECASE)
        chosen = tuple(
            code for code, lab in zip(dim.codes, dim.labels, strict=True) if regex.search(lab)
        )
    if not chosen:
        rule = select.pattern or select.label_pattern
        raise TableSpecError(
            f"table {spec.table_id} ({spec.key}): no value of variable {dim.id!r} matches "
            f"{rule!r}; it has {_describe_values(dim)}. Update the spec in "
            "src/vekst/data/ssb_tables.py."
        )
    return tuple(chosen)


def resolve_query(
    spec: TableSpec, meta: Dataset, first_year: int, last_year: int | None = None
) -> ResolvedQuery:
    """Match ``spec`` against ``meta`` and pick the periods from ``first_year`` on.

    Parameters
    ----------
    spec
        The table spec.
    meta
        The table's metadata (from :meth:`SsbClient.metadata`).
    first_year, last_year
        Calendar years to fetch; ``last_year=None`` means the latest SSB has.

    Returns
    -------
    ResolvedQuery

    Raises
    ------
    TableSpecError
        If a variable or value is gone, no period falls in the range, or a variable the
        spec does not mention cannot be eliminated; the message says what the table has now.
    """
    chosen: dict[str, tuple[str, ...]] = {}
    codelists: dict[str, str] = {}
    names: dict[str, str] = {}
    eliminated: list[str] = []
    for select in spec.all_selections():
        dim = _find_variable(spec, meta, select.variable, select.variable_label)
        names[select.variable] = dim.id
        if select.eliminate:
            if dim.elimination is False:
                raise TableSpecError(
                    f"table {spec.table_id} ({spec.key}): variable {dim.id!r} cannot be "
                    "eliminated (left out of the query); select its values in "
                    "src/vekst/data/ssb_tables.py instead."
                )
            eliminated.append(dim.id)
            continue
        if select.codelist:
            codelists[dim.id] = select.codelist
        chosen[dim.id] = _select_values(spec, dim, select)

    contents_dim = _find_variable(spec, meta, CONTENTS_VARIABLE, "statistikkvariabel")
    names[CONTENTS_VARIABLE] = contents_dim.id
    contents: dict[str, str] = {}
    for content in spec.contents:
        if content.code is not None:
            if content.code not in contents_dim.codes:
                raise TableSpecError(
                    f"table {spec.table_id} ({spec.key}): {contents_dim.id} has no value "
                    f"{content.code!r} (for {content.column}); it has "
                    f"{_describe_values(contents_dim)}. Update the spec in "
                    "src/vekst/data/ssb_tables.py."
                )
            contents[content.code] = content.column
            continue
        regex = re.compile(content.label_pattern or "", re.IGNORECASE)
        match = next(
            (
                c
                for c, lab in zip(contents_dim.codes, contents_dim.labels, strict=True)
                if regex.search(lab)
            ),
            None,
        )
        if match is None:
            raise TableSpecError(
                f"table {spec.table_id} ({spec.key}): no {contents_dim.id} label matches "
                f"{content.label_pattern!r}; it has {_describe_values(contents_dim)}. Update "
                "the spec in src/vekst/data/ssb_tables.py."
            )
        contents[match] = content.column
    chosen[contents_dim.id] = tuple(contents)

    time_dim = _find_variable(spec, meta, spec.time_variable, None)
    names[spec.time_variable] = time_dim.id
    periods = []
    for code in time_dim.codes:
        year = _period_year(code, spec.time_unit)
        if year is not None and year >= first_year and (last_year is None or year <= last_year):
            periods.append(code)
    if not periods:
        known = [c for c in time_dim.codes if _period_year(c, spec.time_unit) is not None]
        span = f"{known[0]}-{known[-1]}" if known else "no periods in the expected format"
        raise TableSpecError(
            f"table {spec.table_id} ({spec.key}): no {spec.time_unit} between {first_year} "
            f"and {last_year or 'the latest'}; the table covers {span}."
        )
    chosen[time_dim.id] = tuple(periods)

    for dim in meta.dimensions:
        if dim.id in chosen or dim.id in eliminated:
            continue
        if dim.elimination is False:
            raise TableSpecError(
                f"table {spec.table_id} ({spec.key}): variable {dim.id!r} ({dim.label}) must "
                f"be selected but the spec does not mention it; values: "
                f"{_describe_values(dim)}. Add a Select to src/vekst/data/ssb_tables.py."
            )
        eliminated.append(dim.id)

    dimensions = tuple((dim.id, chosen[dim.id]) for dim in meta.dimensions if dim.id in chosen)
    return ResolvedQuery(
        spec=spec,
        dimensions=dimensions,
        codelists=codelists,
        contents=contents,
        eliminated=tuple(eliminated),
        variables=names,
    )
