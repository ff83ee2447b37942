"""Border transfers between municipalities: the known ones, and a search for others.

A panel moved onto one code vintage sums merged municipalities over their whole history,
but a transfer of part of a municipality to another (common at the 2017-2020 reforms) is
only corrected where the source knew how many people moved. Where it did not, one
municipality gains and a neighbour loses about the same number of people in one year,
and the residual method books both as migration: before the correction, the embedded
panel had Tønsberg at +5.1 % and Sandefjord at -2.3 % net migration in 2016. A fit takes
such a pair for a migration shock and a backtest scores it as a miss.

:data:`KNOWN_TRANSFERS` lists the transfers of people that the embedded panel's source
leaves in its counts, with the number of residents the ministry gave when it decided
each; the build puts the years before each onto the later border
(:func:`vekst.data.build_sources.read_population`). :func:`suspected_border_transfers`
finds mirrored jumps in any panel, so that a user can check them against their source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "KNOWN_TRANSFERS",
    "BorderTransfer",
    "moved_transfers",
    "moved_transfers_attribute",
    "suspected_border_transfers",
]

#: Attribute of a panel's ``population`` listing the transfers its build moved.
MOVED_ATTRIBUTE = "border_transfers_moved"


@dataclass(frozen=True)
class BorderTransfer:
    """Part of one municipality moved to another.

    Attributes
    ----------
    effective
        Year of the first 1 January count on the new border.
    losing, gaining
        Municipality codes (2024 vintage) that lost and gained the area.
    persons
        Residents of the area when the move was decided, as published.
    area
        What moved.
    reference
        Where the number of residents is published.
    """

    effective: int
    losing: str
    gaining: str
    persons: int
    area: str
    reference: str


#: Transfers of people that SSB's series on 2024 borders (and so the embedded panel's
#: source) leave in the counts: the series sum whole municipalities. Four are the pairs
#: :func:`suspected_border_transfers` finds in the uncorrected panel, the fifth (Sørum to
#: Nes) it finds with a share of 1 % instead of 1.5 %; for three of them the means of the
#: mirrored jumps (466, 537, 438) agree with the published numbers of residents used here.
KNOWN_TRANSFERS: tuple[BorderTransfer, ...] = (
    # The 2015 decision gave "about 2,500" residents for the area as then proposed; with
    # 2,500 the corrected panel still had Sandefjord +500 and Tønsberg -220 persons beyond
    # their usual change in 2016. The panel's own mirrored jumps are used instead.
    BorderTransfer(
        2017, "3907", "3905", 2126,
        "Vear, Hogsnes and Bjelland, from Stokke (now Sandefjord) to Tønsberg",
        "the mean of the uncorrected panel's mirrored jumps in 2016 (Tønsberg +2,245, "
        "Sandefjord -2,008 beyond their usual change); Kommunal- og "
        "moderniseringsdepartementet, 'Grensejustering mellom Stokke og Tønsberg', press "
        "release 2015 (regjeringen.no): about 2,500 residents on the Stokke side",
    ),
    BorderTransfer(
        2020, "4020", "4005", 466,
        "basic units Angard and Hjuksebø, from Sauherad (now Midt-Telemark) to Notodden",
        "Kommunal- og moderniseringsdepartementet, 'Vedtar grensejustering mellom "
        "Sauherad og Notodden kommuner', press release 2018 (regjeringen.no): 466 residents",
    ),
    # Found with a lower threshold of the search (Lillestrøm's loss is 1.3 % of it): the
    # ministry gave "a little over 600" residents of Rånåsfoss, and the county governor
    # added the small areas Neslerud and Simarud without a count; the panel's mirrored
    # jumps (Nes +767, Lillestrøm -1,099 beyond their usual change) are used.
    BorderTransfer(
        2020, "3205", "3228", 933,
        "Rånåsfoss, Neslerud and Simarud, from Sørum (now Lillestrøm) to Nes",
        "the mean of the uncorrected panel's mirrored jumps in 2019 (Nes +767, Lillestrøm "
        "-1,099 beyond their usual change); Kommunal- og moderniseringsdepartementet, "
        "'Vedtar grensejustering mellom Sørum og Nes kommuner', press release 2018 "
        "(regjeringen.no): a little over 600 residents of Rånåsfoss",
    ),
    BorderTransfer(
        2020, "4602", "4649", 541,
        "Bryggja (basic units Totland, Bryggja and Maurstad), from Vågsøy (now Kinn) to "
        "Stad",
        "Kommunal- og moderniseringsdepartementet, decision of November 2017 (Firda "
        "Tidend, 28 November 2017): 541 residents",
    ),
    BorderTransfer(
        2021, "1539", "1535", 442,
        "Vågstranda (basic units Hjelvik and Våge), from Rauma to Vestnes",
        "Kommunal- og moderniseringsdepartementet, press release of June 2019 (Åndalsnes "
        "Avis, 20 June 2019): 442 residents",
    ),
)

def moved_transfers_attribute(transfers: tuple[BorderTransfer, ...]) -> str:
    """The value of ``population.attrs["border_transfers_moved"]`` for ``transfers``:
    ``"<losing>><gaining>:<effective>:<persons>"`` joined by ``"; "``."""
    return "; ".join(f"{t.losing}>{t.gaining}:{t.effective}:{t.persons}" for t in transfers)


def moved_transfers(panel: xr.Dataset) -> list[BorderTransfer]:
    """The border transfers a panel's build moved onto the later borders.

    Read from ``population.attrs["border_transfers_moved"]`` (written by
    :func:`vekst.data.build_sources.move_border_transfers`); empty for a panel without it,
    such as one fetched from SSB, whose years before a transfer keep the old border.
    """
    text = str(panel["population"].attrs.get(MOVED_ATTRIBUTE, "")).strip()
    known = {(t.losing, t.gaining, t.effective): t for t in KNOWN_TRANSFERS}
    moved = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        pair, effective, persons = item.split(":")
        losing, gaining = pair.split(">")
        entry = known.get((losing, gaining, int(effective)))
        area = entry.area if entry else "an area"
        reference = entry.reference if entry else "the panel's population attributes"
        moved.append(BorderTransfer(int(effective), losing, gaining, int(persons), area, reference))
    return moved


#: Years on each side whose median change is a municipality's usual change.
WINDOW = 3


def _unusual_change(totals: np.ndarray) -> np.ndarray:
    """Each year's change less the median change of the ``WINDOW`` years on either side."""
    change = np.diff(totals, axis=1)
    excess = np.full_like(change, np.nan)
    n_years = change.shape[1]
    for t in range(n_years):
        others = [k for k in range(max(0, t - WINDOW), min(n_years, t + WINDOW + 1)) if k != t]
        if others:
            excess[:, t] = change[:, t] - np.median(change[:, others], axis=1)
    return excess


def suspected_border_transfers(
    panel: xr.Dataset,
    *,
    min_share: float = 0.015,
    min_persons: float = 200.0,
    max_ratio: float = 2.0,
) -> pd.DataFrame:
    """Pairs of municipalities in one county whose populations jump in opposite directions.

    Parameters
    ----------
    panel
        A panel with ``population`` (municipality, year, ...) and a ``county`` coordinate
        (without it every municipality is its own county and nothing is found).
    min_share
        Smallest unusual change, as a share of each municipality's population.
    min_persons
        Smallest unusual change, in persons, of each of the two.
    max_ratio
        Largest ratio between the gain and the loss (either way).

    Returns
    -------
    pandas.DataFrame
        One row per pair: ``year`` (the flow year, from 1 January ``year`` to 1 January
        ``year + 1``), ``gaining`` and ``losing`` (code and name), ``gained`` and
        ``lost`` (the unusual change in persons, beyond the median change of the
        municipality in the three years on either side). Empty when nothing is found.
    """
    totals = (
        panel["population"]
        .sum([d for d in panel["population"].dims if d not in ("municipality", "year")])
        .transpose("municipality", "year")
        .values.astype(np.float64)
    )
    excess = _unusual_change(totals)
    share = excess / totals[:, :-1]
    codes = panel["municipality"].values.astype(str)
    names = panel["name"].values.astype(str) if "name" in panel.coords else codes
    county = panel["county"].values.astype(str) if "county" in panel.coords else codes
    years = panel["year"].values
    rows = []
    for t in range(excess.shape[1]):
        big = np.abs(excess[:, t]) >= min_persons
        gains = np.flatnonzero(big & (share[:, t] >= min_share))
        losses = np.flatnonzero(big & (share[:, t] <= -min_share))
        for loss in losses:
            # A loss goes to one place: the gain in its county nearest to it in size.
            candidates = [g for g in gains if county[g] == county[loss]]
            if not candidates:
                continue
            ratios = excess[candidates, t] / -excess[loss, t]
            best = int(np.argmin(np.abs(np.log(ratios))))
            g = candidates[best]
            if 1 / max_ratio <= ratios[best] <= max_ratio:
                rows.append({
                    "year": int(years[t]),
                    "gaining": f"{codes[g]} {names[g]}",
                    "losing": f"{codes[loss]} {names[loss]}",
                    "gained": round(float(excess[g, t])),
                    "lost": round(float(-excess[loss, t])),
                })
    return pd.DataFrame(rows, columns=["year", "gaining", "losing", "gained", "lost"])
