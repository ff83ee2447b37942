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


def _row_sum(flat: np.ndarray) -> np.ndarray:
    """Row sums as float64 (``einsum`` keeps several SIMD accumulators: fast and, for
    rows of ~200 cells, accurate to ~1e-7 relative)."""
    return np.einsum("ij->i", flat).astype(np.float64)


def apply_cell_migration(
    request: np.ndarray,
    state: np.ndarray,
    out_cap: float,
    scratch: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Add the signed cell flows ``request`` to ``state`` in place, capped.

    Parameters
    ----------
    request
        Requested flows ``(draw, municipality, sex, age)`` (persons, signed, same dtype
        as ``state``); overwritten with the flows applied.
    state
        Population before migration; receives the population after.
    out_cap
        Largest share of a cell that may leave.
    scratch
        Two work arrays shaped like ``state`` (allocated when ``None``).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Total applied per ``(draw, municipality)`` (float64) and the flows of the age-0
        cells ``(draw, municipality, sex)``. No cell loses more than ``out_cap`` of itself.
    """
    lead = request.shape[:2]
    dtype = request.dtype
    flat = request.reshape(-1, request.shape[2] * request.shape[3])
    cells = state.reshape(flat.shape)
    if scratch is None:
        scratch = (np.empty_like(state), np.empty_like(state))
    room, losses = (a.reshape(flat.shape) for a in scratch)
    # Almost every row has some nearly empty cell asked for more than it holds, so all
    # rows go through the same in-place passes (float32, ~10 passes).
    np.multiply(cells, dtype.type(out_cap), out=room)
    np.negative(flat, out=losses)
    np.maximum(losses, 0, out=losses)  # wanted losses
    np.maximum(flat, 0, out=flat)  # gains (the request is no longer needed)
    np.subtract(losses, room, out=room)  # wanted beyond the cap where positive
    np.maximum(room, 0, out=room)
    short = _row_sum(room)
    np.subtract(losses, room, out=losses)  # losses within the cap
    rows = np.flatnonzero(short > 0)
    rest_rows = np.zeros(0, dtype=np.int64)
    if rows.size:
        total_gain = _row_sum(flat[rows])
        cut = np.minimum(short[rows], total_gain)
        keep = np.divide(total_gain - cut, total_gain, out=np.ones_like(total_gain),
                         where=total_gain > 0)
        flat[rows] *= keep[:, None].astype(dtype)
        rest = short[rows] - cut
        rest_rows = rows[rest > 1e-6 * np.maximum(short[rows], 1.0)]
        if rest_rows.size:
            # No gains left to cut: take the rest from the room left under the cap.
            rest = rest[rest > 1e-6 * np.maximum(short[rows], 1.0)]
            free = cells[rest_rows].astype(np.float64) * out_cap - losses[rest_rows]
            free = np.maximum(free, 0.0)
            free_total = free.sum(-1)
            share = np.divide(rest, free_total, out=np.zeros_like(rest), where=free_total > 0)
            losses[rest_rows] += (free * np.minimum(share, 1.0)[:, None]).astype(dtype)
    np.subtract(flat, losses, out=flat)
    np.add(cells, flat, out=cells)
    applied = _row_sum(flat)
    if rest_rows.size:
        applied[rest_rows] = flat[rest_rows].sum(-1, dtype=np.float64)
    return applied.reshape(lead), request[..., 0].astype(np.float64)


def spread_signed_schedule(
    pattern: np.ndarray,
    profile: np.ndarray,
    noise: tuple[np.ndarray, np.ndarray],
    totals: np.ndarray,
    requested: np.ndarray,
    state: np.ndarray,
    out_cap: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Build the cell requests ``N g + P (z + e)`` and apply them, in one fused pass.

    The same arithmetic as :func:`apply_cell_migration` on the requests
    ``requested * profile + totals * (pattern + residuals[m, index])``, compiled with numba
    so every row is read twice while it sits in the cache (about 15 numpy passes over
    the chunk otherwise).

    Parameters
    ----------
    pattern, profile
        ``(draw, municipality, sex, age)`` of the chunk.
    noise
        ``(residuals, index)``: residual patterns ``(municipality, year, sex x age)`` and
        the year picked per ``(draw, municipality)``.
    totals, requested
        1 January population and requested net migration, ``(draw, municipality)``.
    state
        Population before migration, receives the population after.
    out_cap
        Largest share of a cell that may leave.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Applied totals ``(draw, municipality)`` and age-0 flows ``(draw, municipality, sex)``.
    """
    n, n_mun, n_sex, n_age = state.shape
    residuals, index = noise
    applied = np.empty((n, n_mun))
    age0 = np.empty((n, n_mun, n_sex))
    _fused(
        pattern.reshape(n, n_mun, -1),
        profile.reshape(n, n_mun, -1),
        residuals,
        np.ascontiguousarray(index, dtype=np.int64),
        np.ascontiguousarray(totals, dtype=np.float64),
        np.ascontiguousarray(requested, dtype=np.float64),
        state.reshape(n, n_mun, -1),
        float(out_cap),
        n_age,
        applied,
        age0,
    )
    return applied, age0


def _fused_impl(pattern, profile, residuals, index, totals, requested, cells, cap, n_age,
                applied, age0):
    n, n_mun, n_cells = cells.shape
    n_sex = n_cells // n_age
    for d in range(n):
        for m in range(n_mun):
            size = totals[d, m]
            net = requested[d, m]
            k = index[d, m]
            gain = 0.0
            short = 0.0
            for c in range(n_cells):
                x = (pattern[d, m, c] + residuals[m, k, c]) * size + net * profile[d, m, c]
                if x >= 0.0:
                    gain += x
                else:
                    room = cap * cells[d, m, c]
                    if -x > room:
                        short += -x - room
            keep = 1.0
            rest = 0.0
            if short > 0.0:
                cut = min(short, gain)
                if gain > 0.0:
                    keep = (gain - cut) / gain
                rest = short - cut
            share = 0.0
            if rest > 1e-9:
                free = 0.0
                for c in range(n_cells):
                    x = (pattern[d, m, c] + residuals[m, k, c]) * size + net * profile[d, m, c]
                    room = cap * cells[d, m, c]
                    free += room - min(max(-x, 0.0), room)
                if free > 0.0:
                    share = min(rest / free, 1.0)
            for s in range(n_sex):
                age0[d, m, s] = cells[d, m, s * n_age]
            total = 0.0
            for c in range(n_cells):
                x = (pattern[d, m, c] + residuals[m, k, c]) * size + net * profile[d, m, c]
                cell = cells[d, m, c]
                room = cap * cell
                if x >= 0.0:
                    flow = x * keep
                    loss = 0.0
                else:
                    loss = min(-x, room)
                    flow = -loss
                if share > 0.0:
                    flow -= (room - loss) * share
                cells[d, m, c] = cell + flow
                # The change actually stored (float32 cells), so totals match the cells.
                total += cells[d, m, c] - cell
            applied[d, m] = total
            for s in range(n_sex):
                age0[d, m, s] = cells[d, m, s * n_age] - age0[d, m, s]


try:
    from numba import njit

    # fastmath: no NaN reaches here, and without it min/max keep the loop scalar.
    _fused = njit(cache=True, nogil=True, fastmath=True)(_fused_impl)
except ImportError:  # pragma: no cover - numba comes with nutpie
    _fused = _fused_impl
