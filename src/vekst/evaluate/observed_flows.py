"""Residual-method net migration checked against observed migration flows.

The panel has no observed migration: its net migration is the cohort residual
(population change minus survival at national mortality, :mod:`vekst.data.components`).
Where registered in- and out-migration by age exist, e.g. the Telemark file
``telemark/Flytting etter alder Telemark Panda.csv`` (17 municipalities, 2016-2021,
single ages 0-70, ``År;Region;Alder;Utflytting;Innflytting;Nettoflytting``), the two can be
compared by municipality, year and age group.

Assumptions of the comparison, stated so a reader can judge the agreement:

* the observed age is read as the age at the end of the year, the age the residual
  method assigns (age on 1 January of the next year);
* empty cells of the observed file are read as 0 movers (the file leaves cells with no
  movers empty);
* the residual absorbs the error of national mortality in the municipality and puts
  age 0 at 0 by construction (births are derived from the age-0 stock), so age 0 is
  expected to disagree;
* the observed file stops at age 70, so older ages are left out of both sides.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from vekst.agegroups import AGE_GROUPS
from vekst.errors import InputError

__all__ = [
    "FlowFileError",
    "agreement_summary",
    "compare_net_migration",
    "observed_age_groups",
    "read_observed_flows",
]

FLOW_COLUMNS = ("År", "Region", "Alder", "Utflytting", "Innflytting", "Nettoflytting")


class FlowFileError(InputError):
    """An observed-flows file cannot be read or matched to the panel."""


def read_observed_flows(path: str | Path, panel: xr.Dataset) -> pd.DataFrame:
    """Observed migration by municipality, year and single age.

    Parameters
    ----------
    path
        A ``;``-separated file with the columns ``År;Region;Alder;Utflytting;Innflytting;
        Nettoflytting`` (``Alder`` as ``"23 år"``; ``Region`` a municipality name).
    panel
        Supplies the codes of the municipality names.

    Returns
    -------
    pandas.DataFrame
        ``municipality, year, age, in_migration, out_migration, net_migration``.

    Raises
    ------
    FlowFileError
        On a missing column, an unknown municipality name or an unreadable age.
    """
    path = Path(path)
    if not path.is_file():
        raise FlowFileError(f"observed flows file {path} not found.")
    raw = pd.read_csv(path, sep=";", encoding="utf-8-sig")
    missing = [c for c in FLOW_COLUMNS if c not in raw.columns]
    if missing:
        raise FlowFileError(f"{path}: missing column(s) {missing}; expected {list(FLOW_COLUMNS)}.")
    codes = panel["municipality"].values.astype(str)
    names = dict(zip(panel["name"].values.astype(str), codes, strict=True))
    unknown = sorted(set(raw["Region"].astype(str)) - set(names))
    if unknown:
        raise FlowFileError(
            f"{path}: municipality name(s) {unknown[:5]} are not names in the panel; fix the "
            "spelling or add a code column."
        )
    ages = raw["Alder"].astype(str).str.extract(r"^(\d+)")[0]
    if ages.isna().any():
        row = int(np.flatnonzero(ages.isna().values)[0])
        raise FlowFileError(f"{path}, data row {row + 1}: age {raw['Alder'].iloc[row]!r}.")
    inflow = raw["Innflytting"].fillna(0.0).astype(float)
    outflow = raw["Utflytting"].fillna(0.0).astype(float)
    return pd.DataFrame(
        {
            "municipality": raw["Region"].astype(str).map(names),
            "year": raw["År"].astype(int),
            "age": ages.astype(int),
            "in_migration": inflow,
            "out_migration": outflow,
            "net_migration": inflow - outflow,
        }
    )


def observed_age_groups(max_age: int) -> list[tuple[str, int, int]]:
    """The planners' age groups (:data:`vekst.agegroups.AGE_GROUPS`) cut at ``max_age``."""
    groups = []
    for label, low, high in AGE_GROUPS:
        if low > max_age:
            break
        top = max_age if high is None or high > max_age else high
        groups.append((label if top == high else f"{low}-{top}", low, top))
    return groups


def compare_net_migration(panel: xr.Dataset, observed: pd.DataFrame) -> pd.DataFrame:
    """Observed and residual-method net migration by municipality, year and age group.

    Parameters
    ----------
    panel
        Panel with ``net_migration`` (municipality, year, age, sex).
    observed
        Output of :func:`read_observed_flows`.

    Returns
    -------
    pandas.DataFrame
        ``municipality, name, year, age_group, observed_in, observed_out, observed_net,
        residual_net, difference`` (residual minus observed, persons), for the years both
        cover and ages up to the observed maximum.
    """
    max_age = int(observed["age"].max())
    years = sorted(set(observed["year"]) & set(panel["year"].values.tolist()))
    if not years:
        raise FlowFileError("the observed flows share no year with the panel's net migration.")
    codes = sorted(observed["municipality"].unique())
    residual = (
        panel["net_migration"]
        .sel(municipality=codes, year=years, age=slice(0, max_age))
        .sum("sex")
        .to_dataframe(name="residual_net")["residual_net"]
        .reset_index()
    )
    rows = observed[observed["year"].isin(years)].merge(
        residual, on=["municipality", "year", "age"], how="left"
    )
    labels = pd.Series(index=range(max_age + 1), dtype=object)
    for label, low, high in observed_age_groups(max_age):
        labels.loc[low:high] = label
    rows["age_group"] = rows["age"].map(labels)
    order = [label for label, _, _ in observed_age_groups(max_age)]
    grouped = (
        rows.groupby(["municipality", "year", "age_group"], observed=True)[
            ["in_migration", "out_migration", "net_migration", "residual_net"]
        ]
        .sum()
        .reset_index()
        .rename(
            columns={
                "in_migration": "observed_in",
                "out_migration": "observed_out",
                "net_migration": "observed_net",
            }
        )
    )
    grouped["difference"] = grouped["residual_net"] - grouped["observed_net"]
    codes = panel["municipality"].values.astype(str)
    names = dict(zip(codes, panel["name"].values.astype(str), strict=True))
    grouped.insert(1, "name", grouped["municipality"].map(names))
    grouped["age_group"] = pd.Categorical(grouped["age_group"], categories=order, ordered=True)
    return grouped.sort_values(["municipality", "year", "age_group"]).reset_index(drop=True)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant (age 0 of the residual)."""
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def agreement_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Agreement per age group: correlation, bias and mean absolute difference.

    Returns
    -------
    pandas.DataFrame
        Per ``age_group`` (and ``all`` over the municipality-year totals): ``n``,
        ``correlation``, ``mean_observed``, ``mean_residual``, ``bias`` (mean residual
        minus observed), ``mean_abs_difference`` and ``mean_gross_flow`` (in + out, the
        scale the differences compare with), persons per municipality and year.
    """

    def stats(frame: pd.DataFrame) -> dict[str, float]:
        obs, res = frame["observed_net"].to_numpy(), frame["residual_net"].to_numpy()
        gross = (frame["observed_in"] + frame["observed_out"]).to_numpy()
        return {
            "n": len(frame),
            "correlation": _correlation(obs, res),
            "mean_observed": float(obs.mean()),
            "mean_residual": float(res.mean()),
            "bias": float((res - obs).mean()),
            "mean_abs_difference": float(np.abs(res - obs).mean()),
            "mean_gross_flow": float(gross.mean()),
        }

    out = {str(g): stats(f) for g, f in table.groupby("age_group", observed=True)}
    totals = table.groupby(["municipality", "year"])[
        ["observed_in", "observed_out", "observed_net", "residual_net"]
    ].sum()
    out["all"] = stats(totals)
    return pd.DataFrame(out).T.rename_axis("age_group").reset_index()
