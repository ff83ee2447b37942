"""Rank-normalised R-hat and bulk/tail ESS of many quantities at once.

The same estimators as ArviZ's ``az.rhat(method="rank")`` and ``az.ess(method="bulk")``
/ ``az.ess(method="tail")`` (Vehtari et al. 2021, "Rank-normalization, folding, and
localization: an improved R-hat"), computed over all quantities of a posterior in a few
array passes. ArviZ 0.x evaluates them one scalar quantity at a time in Python: for the
national fit's 2,291 quantities that took 13-19 s of every fit, longer than compiling
the model from the cache. ``tests/test_mcmc_diagnostics.py`` checks them against
ArviZ itself on chains with known autocorrelation, ties, constant and missing
values.

``rank_diagnostics`` takes draws as ``(chain, draw, quantity)`` and returns one value per
quantity for each diagnostic. Inside, every quantity is a contiguous row
``(quantity, chain, draw)``: sorts, partitions and FFTs along the last axis.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import special, stats
from scipy.fft import next_fast_len

from vekst.threads import usable_cpus

__all__ = ["rank_diagnostics"]

#: Quantities per FFT batch: bounds the working memory (about 0.3 GB at 8,000 draws).
_BATCH = 256


def _rows(draws: np.ndarray) -> np.ndarray:
    """``(chain, draw, quantity)`` as contiguous ``(quantity, chain, draw)`` float64."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(draws, dtype=float), -1, 0))


def _split_chains(rows: np.ndarray) -> np.ndarray:
    """Each chain's first and last half as two chains, ``(k, 2 chain, draw // 2)``."""
    half = rows.shape[2] // 2
    return np.concatenate([rows[:, :, :half], rows[:, :, -half:]], axis=1)


def _z_scale(rows: np.ndarray) -> np.ndarray:
    """Normal scores of each quantity's pooled ranks (average ranks for ties, Blom's
    offset 3/8), as ArviZ's ``_z_scale``."""
    k = rows.shape[0]
    flat = rows.reshape(k, -1)
    size = flat.shape[1]
    order = np.argsort(flat, axis=1)
    ordered = np.take_along_axis(flat, order, axis=1)
    # Without ties the ranks are 1..size in sorted order: one table of scores, placed
    # by the sort. Two equal draws share rank j + 1.5 (folded draws always hold one
    # such pair: the two around the median); longer runs go to scipy's rankdata.
    sorted_scores = np.broadcast_to(_scores(np.arange(1.0, size + 1.0), size), flat.shape).copy()
    pair = ordered[:, 1:] == ordered[:, :-1]
    pair_score = _scores(np.arange(1.0, size) + 0.5, size)
    sorted_scores[:, :-1] = np.where(pair, pair_score, sorted_scores[:, :-1])
    sorted_scores[:, 1:] = np.where(pair, pair_score, sorted_scores[:, 1:])
    scores = np.empty(flat.shape)
    np.put_along_axis(scores, order, sorted_scores, axis=1)
    runs = (pair[:, 1:] & pair[:, :-1]).any(axis=1)
    if runs.any():
        scores[runs] = _scores(stats.rankdata(flat[runs], method="average", axis=1), size)
    return scores.reshape(rows.shape)


def _scores(ranks: np.ndarray, size: int) -> np.ndarray:
    return special.ndtri((ranks - 0.375) / (size + 0.25))


def _rhat_plain(rows: np.ndarray) -> np.ndarray:
    """Potential scale reduction of ``(k, chain, draw)`` draws (no splitting)."""
    n_draw = rows.shape[2]
    between = n_draw * np.var(rows.mean(axis=2), axis=1, ddof=1)
    within = np.var(rows, axis=2, ddof=1).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n_draw - 1) / n_draw)


def _ess_plain(rows: np.ndarray) -> np.ndarray:
    """Effective sample size of ``(k, chain, draw)`` draws by Geyer's initial monotone
    sequence of summed autocorrelation pairs, as ArviZ's ``_ess``."""
    return np.concatenate(
        [_ess_block(rows[start : start + _BATCH]) for start in range(0, rows.shape[0], _BATCH)]
    )


def _ess_block(rows: np.ndarray) -> np.ndarray:
    k, n_chain, n_draw = rows.shape
    total = n_chain * n_draw
    centred = rows - rows.mean(axis=2, keepdims=True)
    size = next_fast_len(2 * n_draw)
    spectrum = np.fft.rfft(centred, n=size, axis=2)
    spectrum *= np.conjugate(spectrum)
    mean_autocov = np.fft.irfft(spectrum, n=size, axis=2)[..., :n_draw].mean(axis=1) / n_draw
    mean_var = mean_autocov[:, 0] * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus = var_plus + np.var(rows.mean(axis=2), axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var[:, None] - mean_autocov) / var_plus[:, None]
    rho[:, 0] = 1.0
    # ArviZ's loop sums autocorrelations in pairs (0, 1), (2, 3), ... while t < n_draw - 3
    # (t = 1, 3, 5, ...): the pairs it can reach.
    last_t = 1
    while last_t < n_draw - 3:
        last_t += 2
    n_pairs = (last_t - 1) // 2 + 1
    pair_sums = rho[:, 0 : 2 * n_pairs : 2] + rho[:, 1 : 2 * n_pairs : 2]
    # It stops at the first pair after the first whose sum is not positive, or at the
    # last pair it reaches; none is summed when the first pair is not positive.
    stops = np.concatenate([pair_sums[:, 1:] <= 0.0, np.ones((k, 1), bool)], axis=1)
    stop = np.minimum(stops.argmax(axis=1) + 1, n_pairs - 1)
    stop = np.where(pair_sums[:, 0] > 0.0, stop, 0)
    # The pairs before the stop, made monotone: each sum at most the one before.
    monotone = np.minimum.accumulate(pair_sums, axis=1)
    kept = np.arange(n_pairs)[None, :] < stop[:, None]
    index = np.arange(k)
    stop_even = rho[index, 2 * stop]
    # The stop pair's even term is added when positive (or when the pair was kept).
    tail = np.where((stop_even > 0.0) | (pair_sums[index, stop] >= 0.0), stop_even, 0.0)
    tail = np.where(stop == 0, 1.0, tail)
    tau = -1.0 + 2.0 * np.where(kept, monotone, 0.0).sum(axis=1) + tail
    tau = np.maximum(tau, 1.0 / np.log10(total))
    ess = np.where(np.isnan(rho).any(axis=1), np.nan, total / tau)
    spread = rows.max(axis=(1, 2)) - rows.min(axis=(1, 2))
    return np.where(spread < np.finfo(float).resolution, float(total), ess)


def _valid(rows: np.ndarray) -> np.ndarray:
    """Quantities without missing draws."""
    return ~np.isnan(rows).any(axis=(1, 2))


def _rhat_rank(split: np.ndarray, bulk_scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    median = np.median(split.reshape(split.shape[0], -1), axis=1)
    folded = np.abs(split - median[:, None, None])
    with np.errstate(invalid="ignore"):
        value = np.maximum(_rhat_plain(bulk_scores), _rhat_plain(_z_scale(folded)))
    return np.where(valid, value, np.nan)


def _ess_tail(rows: np.ndarray, prob: tuple[float, float], valid: np.ndarray) -> np.ndarray:
    pooled = rows.reshape(rows.shape[0], -1)
    values = []
    for level in prob:
        with np.errstate(invalid="ignore"):
            quantile = np.quantile(pooled, level, axis=1)
        below = (rows <= quantile[:, None, None]).astype(float)
        values.append(_ess_plain(_split_chains(below)))
    return np.where(valid, np.minimum(*values), np.nan)


def rank_diagnostics(draws: np.ndarray) -> dict[str, np.ndarray]:
    """R-hat, bulk ESS and tail ESS of every quantity, sharing the rank normalisation.

    Parameters
    ----------
    draws
        ``(chain, draw, quantity)``: NaN throughout below 4 draws, and R-hat NaN
        with a single chain (as ArviZ).

    Returns
    -------
    dict
        One value per quantity: ``rhat`` (rank-normalised split R-hat, the larger of the
        bulk and the folded one; NaN where a quantity has missing draws or no spread),
        ``ess_bulk`` (ESS of the rank-normalised split chains) and ``ess_tail`` (the
        smaller ESS of the indicators of being at or below the 5 % and the 95 %
        quantile, R's type 7 quantiles); ESS NaN where a quantity has missing draws.
    """
    rows = _rows(draws)
    if rows.shape[2] < 4 or rows.shape[0] == 0:
        nothing = np.full(rows.shape[0], np.nan)
        return {"rhat": nothing, "ess_bulk": nothing.copy(), "ess_tail": nothing.copy()}
    blocks = [rows[start : start + _BATCH] for start in range(0, rows.shape[0], _BATCH)]
    # numpy's sorts, partitions and FFTs release the GIL: blocks of quantities in threads.
    with ThreadPoolExecutor(min(len(blocks), usable_cpus(), 4)) as pool:
        results = list(pool.map(_rank_diagnostics_block, blocks))
    return {name: np.concatenate([r[name] for r in results]) for name in results[0]}


def _rank_diagnostics_block(rows: np.ndarray) -> dict[str, np.ndarray]:
    split = _split_chains(rows)
    bulk_scores = _z_scale(split)
    valid = _valid(rows)
    return {
        # As ArviZ: no R-hat from a single chain, however it is split.
        "rhat": _rhat_rank(split, bulk_scores, valid & (rows.shape[1] > 1)),
        "ess_bulk": np.where(valid, _ess_plain(bulk_scores), np.nan),
        "ess_tail": _ess_tail(rows, (0.05, 0.95), valid),
    }
