"""Apply signed per-cell migration requests without emptying any cell.

A signed schedule (:mod:`vekst.projection.agepattern`) asks for a flow per cell whose sum
is the municipality's total. Losses are capped per cell at ``out_cap`` of the cell; what
the cap holds back (the shortfall) is first taken off the gains of the same municipality
(in proportion), so the total stays what was asked; only when there are no gains left is
the rest taken from the cells' remaining room under the cap (in proportion to it). A
request larger than ``out_cap`` of the whole population cannot be met; the shortfall is
then not applied and the recorded total says so.
"""

from __future__ import annotations

import numpy as np

__all__ = ["apply_cell_migration"]


def apply_cell_migration(
    request: np.ndarray, state: np.ndarray, out_cap: float
) -> tuple[np.ndarray, np.ndarray]:
    """Add the signed cell flows ``request`` to ``state`` in place, capped.

    Parameters
    ----------
    request
        Requested flows ``(draw, municipality, sex, age)`` (persons, signed, float64
        preferred so totals are met to the person); overwritten with the flows applied.
    state
        Population before migration, same shape; receives the population after.
    out_cap
        Largest share of a cell that may leave.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Total applied per ``(draw, municipality)`` (float64) and the flows of the age-0
        cells ``(draw, municipality, sex)``. No cell loses more than ``out_cap`` of itself.
    """
    lead = request.shape[:2]
    flat = request.reshape(*lead, -1)
    cells = state.reshape(*lead, -1)
    dtype = flat.dtype
    room = cells.astype(dtype) * out_cap
    gains = np.maximum(flat, 0)
    wanted = np.maximum(-flat, 0)
    losses = np.minimum(wanted, room)
    short = (wanted - losses).sum(-1, dtype=np.float64)
    if np.any(short > 0):
        total_gain = gains.sum(-1, dtype=np.float64)
        cut = np.minimum(short, total_gain)
        keep = np.divide(total_gain - cut, total_gain, out=np.ones_like(total_gain),
                         where=total_gain > 0)
        gains *= keep[..., None].astype(dtype)
        rest = short - cut
        rows = rest > 1e-9
        if np.any(rows):
            free = np.where(rows[..., None], room - losses, 0)
            free_total = free.sum(-1, dtype=np.float64)
            share = np.divide(rest, free_total, out=np.zeros_like(rest), where=free_total > 0)
            losses += free * np.minimum(share, 1.0)[..., None].astype(dtype)
    np.subtract(gains, losses, out=flat)
    np.add(cells, flat, out=cells, casting="unsafe")
    applied = flat.sum(-1, dtype=np.float64)
    age0 = request[..., 0].astype(np.float64)
    return applied, age0
