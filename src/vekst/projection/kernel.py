r"""The cohort-component kernel: numpy arrays in, numpy arrays out, chunked over draws.

Layout and precision
--------------------
The state of a chunk of ``D`` draws is one array ``(draw, municipality, sex, age)`` (sex
order female, male; ages 0 .. A-1, the last age open). Cell arithmetic runs in float32 by
default (persons per cell are below 10^5, so float32 keeps about 0.01 persons of
precision); every total that enters the accounts (births, deaths, net migration,
population) is kept in float64. Chunks of 10-20 draws keep the working set (three
state-sized buffers) in the CPU cache; xarray never enters the loop. Each year costs about
a dozen passes over the state (survival, ageing by a one-element shift of the flat buffer,
the migration products, row sums), each one vectorised numpy.

One projected calendar year ``t`` (stocks on 1 January ``t`` -> 1 January ``t + 1``)
-------------------------------------------------------------------------------
The accounting follows :mod:`vekst.data.components` (flows labelled with the age at the
**end** of the year, newborns at age 0):

1. **Survival.** ``S[a] = P[a] * exp(-h[t, s, a] * k_m)``, where ``h = -log p`` is the
   national one-year cohort hazard from
   :func:`vekst.data.components.survival_probability` (mean of m(a) and m(a+1); open age
   m(max)) and ``k_m = exp(mort_dev[m])`` scales the municipality's hazard. Survivors age
   one year; the open age keeps its own survivors.
2. **Births** (first pass). Women-years of the year are not known before migration, so a
   provisional count from the 1 January women positions the newborns for step 3.
3. **Net migration.** The migration model gives a rate (% of the 1 January population,
   per draw and municipality); ``N = rate / 100 * P_total``. It is spread over age and
   sex without ever making a cell negative:

   * the positive part ``max(N, 0)`` is added in proportion to the municipality's
     ``in_share`` (an age-sex profile of gains, sums to 1);
   * the negative part ``max(-N, 0)`` is taken from the cells in proportion to
     population x ``out_propensity`` with a per-cell loss rate
     ``min(out_propensity * r, out_cap)``: no cell loses more than ``out_cap`` (0.8) of
     its persons in a year. ``r`` solves ``sum(cell * min(propensity * r, cap)) =
     max(-N, 0)``; if the cap binds, the uncapped cells take the rest (a few
     fixed-point steps), and what cannot be taken at all (a request above ``out_cap`` of
     the whole population) is not applied.

   With a signed schedule (``age_pattern``, the default of projections with draws) the
   request per cell is ``N g + P (z + e_t)`` instead (:mod:`vekst.projection.agepattern`):
   gains and losses per cell, losses capped at ``out_cap`` of the cell, what the cap
   holds back taken off the gains (:mod:`vekst.projection.spread`).

   Cell values never fall below ``(1 - out_cap)`` of what they were. The migration
   **applied** is recorded (``net_migration``) beside the request
   (``net_migration_requested``).
4. **Births** (final). ``B = sum_a ASFR[t, a] * (W_jan1[a] + W_dec31[a]) / 2 * f_m``
   with female person-years approximated as in
   :func:`vekst.features.expected_births` (mean of the 1 January stocks of ``t`` and
   ``t + 1`` at the same age; the 31 December women include this year's migrants) and
   ``f_m = exp(fert_dev[m])`` (times the draw's national TFR factor, ``tfr_factor``);
   with ``birth_noise``, ``B + sqrt(B) xi`` (floored at 0). Boys and girls by the sex
   ratio at birth; newborns
   survive to 1 January with ``exp(-k_m * m0 / 2)`` (the components convention).
   A negative age-0 migration larger than ``out_cap`` of the final newborns is cut back.
5. **Balance.** ``P[t + 1] = survivors + newborn survivors + migration applied`` cell by
   cell; deaths = ``P_total - survivors_total + births - newborn survivors``, so
   ``P_total[t + 1] - P_total[t] = births - deaths + net migration`` in every draw,
   municipality and year.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vekst.projection.death_factor import chance_factors
from vekst.projection.spread import apply_net_migration, spread_signed_schedule
from vekst.threads import usable_cpus

__all__ = [
    "DeathNoise",
    "KernelInputs",
    "KernelResult",
    "MigrationRate",
    "apply_net_migration",
    "kernel_workers",
    "run_kernel",
]

#: Largest share of a cell that may leave in one year (see step 3 of the module docstring).
OUT_CAP = 0.8


class AgePatternSource(Protocol):
    """Per-draw signed migration schedules (see :mod:`vekst.projection.agepattern`)."""

    def chunk(self, draws: slice) -> tuple[np.ndarray, np.ndarray]: ...

    def year_noise(self, draws: slice, t: int) -> tuple[np.ndarray, np.ndarray]: ...


class MigrationRate(Protocol):
    """Net migration rate of a chunk of draws for projected year ``t``.

    Called once per chunk and year with the 1 January population of year ``t``
    ``(draw, municipality, sex, age)`` and its float64 totals ``(draw, municipality)``;
    returns the rate in % of that population, ``(draw, municipality)``.
    """

    def __call__(
        self, draws: slice, t: int, population: np.ndarray, totals: np.ndarray
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class DeathNoise:
    """Demographic noise of deaths: chance around the expected number, not only rates.

    Deaths are summed per municipality, sex and age group (``group_width`` years from
    ``first_age``; the last group holds the open age). A group with ``D`` expected deaths
    among ``P`` people gets ``D f``, where ``f`` is a factor with mean 1, the binomial's
    variance ``(1 - D / P) / D`` and about its skewness, never negative
    (:mod:`vekst.projection.death_factor`). Each cell of the group takes its share of the
    change, so ``f`` is capped at ``1 / q_max`` (``q_max`` the largest share of a cell of
    the group that dies): no cell loses more people than it has. Without the noise the
    bands of small cells (the oldest ages, small municipalities) hold only rate
    uncertainty, while chance alone moves a group of 40 people aged 90+ by about 10 % in
    four years.

    The cap keeps the mean: where it can bind, the capped factor is moved towards the cap
    by what the cap took off. Capping the mean-1 log-normal factor used before took 6 % of
    the expected deaths of a group of two people aged 95+ and 20-30 % below one person; in
    places under 2,000 inhabitants that added 3 points to the projected 90+ after four
    years (backtest origin 2015). Such groups keep less than the binomial's variance (the
    bound leaves no room for more).

    Why not per cell: most single-age cells of small places hold a fraction of a person,
    where a normal approximation cut to ``[0, P]`` adds deaths on average (it did: +2,500
    deaths a year nationally). A factor that rises with a standard normal shock keeps
    common random numbers exact between runs, which :mod:`vekst.uncertainty` relies on.
    Shocks are keyed by calendar year and draw, so other chunk sizes or a shorter horizon
    see the same ones.

    Attributes
    ----------
    seed
        Seed of the projection.
    years
        Calendar year of each projected step (``KernelInputs.n_years`` of them).
    first_age
        Youngest age index with noise. Below 50 a year's death risk is under 0.3 %: the
        noise is lost beside migration's.
    group_width
        Years per age group.
    corrected_from
        First age of the groups whose capped factors are made mean-neutral. The plain cap
        took about 110 expected deaths a year off the groups from 90 nationally, 0.9 off
        those of 80-89 and 0.2 off all younger ones together (embedded panel, test draws
        to 2040): the younger groups are left as they are and skip the correction's cost.
    """

    seed: int
    years: tuple[int, ...]
    first_age: int = 50
    group_width: int = 5
    corrected_from: int = 90

    def group_starts(self, n_age: int) -> np.ndarray:
        """First age index of each group, for ages ``first_age .. n_age - 1``."""
        return np.arange(min(self.first_age, n_age - 1), n_age, self.group_width)

    def shocks(self, draws: slice, t: int, shape: tuple[int, ...]) -> np.ndarray:
        """Standard normal shocks ``(draw, *shape)`` of step ``t``, keyed by draw and year."""
        z = np.empty((draws.stop - draws.start, *shape))
        for i, draw in enumerate(range(draws.start, draws.stop)):
            rng = np.random.default_rng([int(self.seed), 0xDE, int(self.years[t]), draw])
            rng.standard_normal(out=z[i])
        return z

    def factors(
        self,
        draws: slice,
        t: int,
        deaths: np.ndarray,
        population: np.ndarray,
        largest_share: np.ndarray | None = None,
    ) -> np.ndarray:
        """Multipliers of the expected deaths ``(draw, ..., group)`` of step ``t``.

        ``largest_share`` is the largest share of a cell of each group that dies (default
        the group's share): the factor never exceeds its inverse, and has mean 1.
        """
        z = self.shocks(draws, t, deaths.shape[1:])
        if largest_share is None:
            largest_share = np.zeros_like(deaths)
        first = self.corrected_groups(deaths.shape[-1]).start
        return chance_factors(z, deaths, population, largest_share, first)

    def corrected_groups(self, n_groups: int) -> slice:
        """The groups from ``corrected_from`` on, whose cap is kept mean-neutral."""
        first = -(-(self.corrected_from - self.first_age) // self.group_width)
        return slice(min(max(first, 0), n_groups), None)


@dataclass(frozen=True)
class KernelInputs:
    """Everything the kernel needs, as plain arrays.

    Attributes
    ----------
    population
        Base-year stock ``(municipality, sex, age)``.
    hazard
        National one-year cohort hazard ``-log p`` per projected year, ``(year, sex, age)``.
    newborn_hazard
        ``-log`` of newborn survival to 1 January, ``(year, sex)``.
    asfr
        National births per woman-year by age, ``(year, age)``.
    female_birth_share
        Share of girls among births, ``1 / (1 + sex ratio)``.
    in_share, out_propensity
        Migration schedule ``(municipality, sex, age)``.
    mort_factor, fert_factor
        ``exp(mort_dev)`` and ``exp(fert_dev)`` per draw, ``(draw, municipality)``, or
        ``None`` (no deviation).
    out_cap
        Largest share of a cell that may leave in one year.
    age_pattern
        Per-draw signed schedules (:class:`AgePatternSource`); when given, net migration
        is spread as ``N g + P (z + e_t)`` per cell (:mod:`vekst.projection.spread`)
        instead of by ``in_share`` / ``out_propensity``.
    tfr_factor
        National fertility level per draw and year relative to ``asfr``, ``(draw, year)``.
    birth_noise
        Standard normal shocks of births, ``(draw, year, municipality)``: births are
        ``B + sqrt(B) xi`` (the normal approximation of Poisson noise), floored at 0.
    fertility_noise
        Relative deviation of each municipality's births from its level beyond chance,
        ``(draw, year, municipality)``: the expected births ``B`` become ``B (1 + d)``
        before the Poisson noise (:mod:`vekst.projection.birth_dispersion`).
    mortality_shift, mortality_loading
        Lee-Carter deviation of the period index per draw, year and sex ``(draw, year,
        sex)`` and its age loading ``(sex, age)``: hazards are multiplied by
        ``exp(loading * shift)``.
    death_noise
        Demographic noise of deaths (:class:`DeathNoise`); ``None`` = survivors are the
        expected number.
    """

    population: np.ndarray
    hazard: np.ndarray
    newborn_hazard: np.ndarray
    asfr: np.ndarray
    female_birth_share: float
    in_share: np.ndarray
    out_propensity: np.ndarray
    mort_factor: np.ndarray | None = None
    fert_factor: np.ndarray | None = None
    out_cap: float = OUT_CAP
    age_pattern: AgePatternSource | None = None
    tfr_factor: np.ndarray | None = None
    birth_noise: np.ndarray | None = None
    fertility_noise: np.ndarray | None = None
    mortality_shift: np.ndarray | None = None
    mortality_loading: np.ndarray | None = None
    death_noise: DeathNoise | None = None

    @property
    def n_years(self) -> int:
        """Number of projected calendar years."""
        return int(self.hazard.shape[0])

    def check(self) -> None:
        """Raise ``ValueError`` naming the first array whose shape or values are wrong."""
        n_mun, n_sex, n_age = self.population.shape
        expected = {
            "hazard": (self.n_years, n_sex, n_age),
            "newborn_hazard": (self.n_years, n_sex),
            "asfr": (self.n_years, n_age),
            "in_share": (n_mun, n_sex, n_age),
            "out_propensity": (n_mun, n_sex, n_age),
        }
        for name, shape in expected.items():
            actual = np.shape(getattr(self, name))
            if actual != shape:
                raise ValueError(f"kernel input '{name}' has shape {actual}, expected {shape}.")
        per_year = {
            "tfr_factor": (self.n_years,),
            "birth_noise": (self.n_years, n_mun),
            "fertility_noise": (self.n_years, n_mun),
            "mortality_shift": (self.n_years, n_sex),
        }
        for name, tail in per_year.items():
            value = getattr(self, name)
            if value is not None and value.shape[1:] != tail:
                raise ValueError(
                    f"kernel input '{name}' must be (draw, {', '.join(map(str, tail))}); got "
                    f"{value.shape}."
                )
        if (self.mortality_shift is None) != (self.mortality_loading is None):
            raise ValueError("'mortality_shift' and 'mortality_loading' go together.")
        if self.mortality_loading is not None and self.mortality_loading.shape != (n_sex, n_age):
            raise ValueError(
                f"kernel input 'mortality_loading' has shape {self.mortality_loading.shape}, "
                f"expected {(n_sex, n_age)}."
            )
        for name in ("mort_factor", "fert_factor"):
            value = getattr(self, name)
            if value is not None and (value.ndim != 2 or value.shape[1] != n_mun):
                raise ValueError(
                    f"kernel input '{name}' must be (draw, municipality={n_mun}); got "
                    f"{value.shape}."
                )
        if n_sex != 2:
            raise ValueError(f"the kernel needs two sexes (female, male); got {n_sex}.")
        if np.any(self.population < 0) or not np.all(np.isfinite(self.population)):
            raise ValueError("the base population has negative or non-finite cells.")
        for name in ("hazard", "newborn_hazard", "asfr", "in_share", "out_propensity"):
            value = getattr(self, name)
            if not np.all(np.isfinite(value)) or np.any(value < 0):
                raise ValueError(f"kernel input '{name}' has negative or non-finite values.")
        if not 0 < self.out_cap < 1:
            raise ValueError(f"out_cap must lie in (0, 1); got {self.out_cap}.")


@dataclass
class KernelResult:
    """Flows and totals of a run, ``(draw, year, municipality)``.

    Every array has ``n_years + 1`` years, the base year first: stocks on 1 January of
    each year, flows of each calendar year (NaN in the last year, which has a stock but no
    flow, as in the panel). Accounting variables (``population_total``, ``births``,
    ``deaths``, ``net_migration``) are float64; the request and the expected events,
    which only describe, are float32.
    """

    population_total: np.ndarray
    births: np.ndarray
    deaths: np.ndarray
    net_migration: np.ndarray
    net_migration_requested: np.ndarray
    expected_births: np.ndarray
    expected_deaths: np.ndarray


StoreFn = Callable[[slice, int, np.ndarray], None]
TraceFn = Callable[..., None]


def run_kernel(
    inputs: KernelInputs,
    n_draws: int,
    migration: MigrationRate | None = None,
    *,
    chunk_size: int = 10,
    dtype: type = np.float32,
    store: StoreFn | None = None,
    trace: TraceFn | None = None,
    workers: int | None = None,
) -> KernelResult:
    """Project every draw, chunk by chunk.

    Parameters
    ----------
    inputs
        Arrays, see :class:`KernelInputs`.
    n_draws
        Number of draws (the leading axis of ``mort_factor`` / ``fert_factor`` when given).
    migration
        Net migration rate callback (:class:`MigrationRate`); ``None`` = no migration.
    chunk_size
        Draws per chunk (memory is ~10 state arrays of ``chunk_size`` draws).
    dtype
        Cell precision, ``np.float32`` (default) or ``np.float64``.
    store
        Called as ``store(draw_slice, year_index, population)`` with the 1 January stock
        of every year (index 0 = base year), ``(draw, municipality, sex, age)``; copy what
        you keep, the buffer is reused.
    trace
        Debug hook called per chunk and year with keyword arrays ``start``, ``survivors``
        (aged, age 0 empty), ``newborns`` ``(draw, municipality, sex)``, ``migration``
        and ``end``; for tests of the accounting.
    workers
        Chunks projected at once, each in its own thread with its own buffers (numpy and
        the compiled loops release the GIL). Default: one per CPU available, at most
        :data:`MAX_WORKERS`; always one with a ``trace``. Every chunk's draws are keyed
        by draw, so the result is the same for any number of workers. ``store`` and
        ``migration`` are then called from several threads, each with its own draws.

    Returns
    -------
    KernelResult
    """
    inputs.check()
    if n_draws < 1:
        raise ValueError(f"n_draws must be >= 1, got {n_draws}.")
    for name in ("mort_factor", "fert_factor"):
        value = getattr(inputs, name)
        if value is not None and value.shape[0] != n_draws:
            raise ValueError(f"'{name}' has {value.shape[0]} draws, n_draws is {n_draws}.")
    n_mun = inputs.population.shape[0]
    n_years = inputs.n_years
    shape = (n_draws, n_years + 1, n_mun)

    def flow(dtype: type = np.float64) -> np.ndarray:
        array = np.empty(shape, dtype=dtype)
        array[:, -1] = np.nan
        return array

    result = KernelResult(
        population_total=np.empty(shape),
        births=flow(),
        deaths=flow(),
        net_migration=flow(),
        net_migration_requested=flow(np.float32),
        expected_births=flow(np.float32),
        expected_deaths=flow(np.float32),
    )
    chunk_size = max(1, min(int(chunk_size), n_draws))
    chunks = [
        slice(start, min(start + chunk_size, n_draws)) for start in range(0, n_draws, chunk_size)
    ]
    n_workers = kernel_workers(workers, len(chunks), trace)
    states: queue.SimpleQueue[_State] = queue.SimpleQueue()
    for _ in range(n_workers):
        states.put(_State(inputs, chunk_size, dtype))

    def run(draws: slice) -> None:
        state = states.get()
        try:
            state.run_chunk(draws, migration, result, store, trace)
        finally:
            states.put(state)

    with _single_threaded_blas():
        if n_workers == 1:
            for draws in chunks:
                run(draws)
        else:
            with ThreadPoolExecutor(max_workers=n_workers) as pool:
                # ``list`` re-raises the first error of any chunk here.
                list(pool.map(run, chunks))
    return result


#: Most kernel threads by default: a cap on memory (one set of buffers per thread);
#: measured only up to two threads (1.53x faster than one on 2 cores).
MAX_WORKERS = 4


def kernel_workers(workers: int | None, n_chunks: int, trace: TraceFn | None = None) -> int:
    """Threads the kernel uses for ``n_chunks`` chunks (see :func:`run_kernel`).

    Raises
    ------
    ValueError
        When ``workers`` is given and below 1.
    """
    if workers is not None and int(workers) < 1:
        raise ValueError(f"workers must be at least 1, got {workers}.")
    if trace is not None:
        return 1
    if workers is None:
        workers = min(usable_cpus(), MAX_WORKERS)
    return max(1, min(int(workers), n_chunks))


@contextmanager
def _single_threaded_blas():
    """One BLAS thread inside the kernel.

    The kernel's matrix products are small and memory-bound; OpenBLAS threads only spin
    against each other (measured 13x slower on a busy 2-core machine).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with pymc
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _noisy_survivors(
    population: np.ndarray,
    survival: np.ndarray,
    noise: DeathNoise,
    draws: slice,
    t: int,
    out: np.ndarray,
) -> None:
    """Survivors after chance deaths (:class:`DeathNoise`) into ``out``.

    ``survival`` is the one-year survival probability, ``(draw or 1, municipality or 1,
    sex, age)``; ``out`` (may be ``survival`` itself when that is full-sized) receives
    ``population x survival`` with the deaths of each group scaled by its chance factor.
    The survivors and group sums, the factors
    (:func:`vekst.projection.death_factor.chance_factors`) and the expansion of the group
    factors back to single ages are compiled loops (one pass each, no temporaries).
    """
    starts = noise.group_starts(population.shape[-1]).astype(np.int64)
    n_age = population.shape[-1]
    group_shape = (*population.shape[:-1], len(starts))
    deaths, people, largest = _survive_groups(
        population, np.ascontiguousarray(survival), out, starts
    )
    factor = noise.factors(
        draws,
        t,
        deaths.reshape(group_shape),
        people.reshape(group_shape),
        largest.reshape(group_shape),
    )
    _scale_deaths(
        population.reshape(-1, n_age),
        out.reshape(-1, n_age),
        factor.reshape(-1, len(starts)),
        starts,
    )


def _survive_groups_impl(population, survival, survivors, starts):
    """``survivors = population x survival`` cell by cell (``survival`` broadcast over
    draws and municipalities where its axis has length 1), and per row and age group, in
    float64: deaths, people and the largest share of a populated cell that dies
    (``1 - survival``: no division per cell)."""
    _, n_mun, n_sex, n_age = population.shape
    n_groups = starts.shape[0]
    cells = population.reshape(-1, n_age)
    kept = survivors.reshape(-1, n_age)
    chances = survival.reshape(-1, n_age)
    draw_stride = survival.shape[1] * n_sex if survival.shape[0] > 1 else 0
    mun_stride = n_sex if survival.shape[1] > 1 else 0
    n_rows = cells.shape[0]
    deaths = np.zeros((n_rows, n_groups))
    people = np.zeros((n_rows, n_groups))
    largest = np.zeros((n_rows, n_groups))
    first = starts[0]
    for r in range(n_rows):
        d, rest = divmod(r, n_mun * n_sex)
        m, s = divmod(rest, n_sex)
        k = d * draw_stride + m * mun_stride + s
        for a in range(first):
            kept[r, a] = cells[r, a] * chances[k, a]
        for g in range(n_groups):
            last = starts[g + 1] if g + 1 < n_groups else n_age
            died = 0.0
            alive = 0.0
            share = 0.0
            for a in range(starts[g], last):
                # Read before the write: ``survivors`` may be ``survival`` itself.
                cell, chance = cells[r, a], chances[k, a]
                left = cell * chance
                kept[r, a] = left
                alive += cell
                died += cell - left
                if cell > 0:
                    share = max(share, 1.0 - chance)
            deaths[r, g] = died
            people[r, g] = alive
            largest[r, g] = share
    return deaths, people, largest


def _scale_deaths_impl(population, survivors, factor, starts) -> None:
    """Multiply each cell's deaths by its group's factor, in place on ``survivors``."""
    n_rows, n_age = population.shape
    n_groups = starts.shape[0]
    for r in range(n_rows):
        for g in range(n_groups):
            last = starts[g + 1] if g + 1 < n_groups else n_age
            f = factor[r, g]
            for a in range(starts[g], last):
                died = (population[r, a] - survivors[r, a]) * f
                survivors[r, a] = max(population[r, a] - died, 0.0)


try:
    from numba import njit

    _survive_groups = njit(cache=True, nogil=True)(_survive_groups_impl)
    _scale_deaths = njit(cache=True, nogil=True)(_scale_deaths_impl)
except ImportError:  # pragma: no cover - numba comes with nutpie
    _survive_groups, _scale_deaths = _survive_groups_impl, _scale_deaths_impl


def _row_sum(array: np.ndarray) -> np.ndarray:
    """Sum over the last two axes, returned as float64.

    ``einsum`` reduces float32 rows with several SIMD accumulators: about ten times faster
    than a float64-accumulating ``sum`` and, for rows of ~200 cells, accurate to ~1e-7
    relative (0.1 persons on Oslo's 700,000).
    """
    flat = array.reshape(-1, array.shape[-2] * array.shape[-1])
    return np.einsum("ij->i", flat).astype(np.float64).reshape(array.shape[:-2])


class _State:
    """Buffers and per-year constants shared by all chunks."""

    def __init__(self, inputs: KernelInputs, chunk_size: int, dtype: type) -> None:
        self.inputs = inputs
        self.dtype = np.dtype(dtype)
        n_mun, n_sex, n_age = inputs.population.shape
        self.shape = (chunk_size, n_mun, n_sex, n_age)
        self.buffers = {
            name: np.empty(self.shape, dtype=self.dtype) for name in ("pop", "nxt", "tmp")
        }
        self.neg_hazard = (-inputs.hazard).astype(self.dtype)
        self.p_national = np.exp(-inputs.hazard).astype(self.dtype)
        self.q_national = (1.0 - np.exp(-inputs.hazard)).reshape(inputs.n_years, -1)
        self.newborn_p_national = np.exp(-inputs.newborn_hazard)
        self.sex_share = np.array([inputs.female_birth_share, 1.0 - inputs.female_birth_share])
        fertile = np.flatnonzero(np.any(inputs.asfr > 0, axis=0))
        self.fertile = slice(int(fertile[0]), int(fertile[-1]) + 1) if fertile.size else slice(0, 0)
        self.asfr = inputs.asfr[:, self.fertile].astype(self.dtype)
        self.in_share = inputs.in_share.astype(self.dtype)
        self.in_total = self.in_share.sum((1, 2), dtype=np.float64)
        self.out_propensity = inputs.out_propensity.astype(self.dtype)

    def _women(self, state: np.ndarray, t: int) -> np.ndarray:
        """ASFR-weighted women ``(draw, municipality)`` of a state array, float64.

        A 2-D view with unit inner stride goes to BLAS without a copy.
        """
        flat = state.reshape(-1, state.shape[2] * state.shape[3])[:, self.fertile]
        return (flat @ self.asfr[t]).astype(np.float64).reshape(state.shape[:2])

    def _national_survival(self, t: int, n: int, shift) -> np.ndarray:
        """One-year survival ``(draw or 1, 1, sex, age)`` of step ``t`` without municipal
        deviations: the same numbers as :meth:`_survival_probability`, not broadcast."""
        if shift is None:
            return self.p_national[t][None, None]
        neg_hazard = self.neg_hazard[t] * shift[:, None].astype(self.dtype)
        return np.exp(neg_hazard)

    def _survival_probability(self, t, n, mort, shift, *, out: np.ndarray) -> None:
        """One-year survival ``(draw, municipality, sex, age)`` of step ``t`` into ``out``."""
        if mort is None and shift is None:
            np.copyto(out, np.broadcast_to(self.p_national[t], out.shape))
            return
        neg_hazard = (
            self.neg_hazard[t]
            if shift is None
            else (self.neg_hazard[t] * shift[:, None].astype(self.dtype))
        )
        factor = np.ones((n, 1, 1, 1), self.dtype) if mort is None else mort[:, :, None, None]
        np.multiply(factor, neg_hazard, out=out)
        np.exp(out, out=out)

    def run_chunk(self, draws, migration, result, store, trace) -> None:
        inputs = self.inputs
        n = draws.stop - draws.start
        pop, nxt, tmp = (self.buffers[k][:n] for k in ("pop", "nxt", "tmp"))
        pop[...] = inputs.population[None].astype(self.dtype)
        totals = _row_sum(pop)
        result.population_total[draws, 0] = totals
        if store is not None:
            store(draws, 0, pop)
        mort = None if inputs.mort_factor is None else inputs.mort_factor[draws].astype(self.dtype)
        fert = (
            np.ones((n, pop.shape[1]))
            if inputs.fert_factor is None
            else np.asarray(inputs.fert_factor[draws], dtype=np.float64)
        )
        profile = pattern = None
        if inputs.age_pattern is not None:
            profile, pattern = inputs.age_pattern.chunk(draws)
        for t in range(inputs.n_years):
            fert_t = fert
            if inputs.tfr_factor is not None:
                fert_t = fert * inputs.tfr_factor[draws, t][:, None]
            shift = None
            if inputs.mortality_shift is not None:
                shift = np.exp(
                    inputs.mortality_loading[None] * inputs.mortality_shift[draws, t][..., None]
                )  # (draw, sex, age)
            # 1. survival, then ageing by one year (the open age keeps its survivors).
            # Shifting the flat buffers by one element ages every row at once; age 0
            # receives the previous row's oldest survivors, which are discarded below.
            flat_pop, flat_tmp, flat_nxt = pop.reshape(-1), tmp.reshape(-1), nxt.reshape(-1)
            if inputs.death_noise is not None:
                if mort is None:
                    # Survival differs only by draw, sex and age: one exp per draw's
                    # (sex, age) instead of per cell (the fits of the embedded panel have
                    # no municipal mortality deviation).
                    survival = self._national_survival(t, n, shift)
                else:
                    self._survival_probability(t, n, mort, shift, out=tmp)
                    survival = tmp
                _noisy_survivors(pop, survival, inputs.death_noise, draws, t, out=tmp)
                np.copyto(flat_nxt[1:], flat_tmp[:-1])
                nxt[..., -1] += tmp[..., -1]
            elif mort is None and shift is None:
                np.multiply(pop, self.p_national[t], out=tmp)
                np.copyto(flat_nxt[1:], flat_tmp[:-1])
                nxt[..., -1] += tmp[..., -1]
            else:
                self._survival_probability(t, n, mort, shift, out=tmp)
                np.multiply(flat_pop[:-1], flat_tmp[:-1], out=flat_nxt[1:])
                nxt[..., -1] += pop[..., -1] * tmp[..., -1]
            flat_nxt[0] = 0
            surv_total = _row_sum(nxt) - nxt[..., 0].sum(-1, dtype=np.float64)
            # 2. provisional newborns from the 1 January women
            women_start = self._women(pop, t)
            newborn_hazard = np.broadcast_to(inputs.newborn_hazard[t], (n, 1, 2))
            if shift is not None:
                newborn_hazard = newborn_hazard * shift[:, None, :, 0]
            if mort is None:
                newborn_p = np.broadcast_to(np.exp(-newborn_hazard), (n, pop.shape[1], 2))
            else:
                newborn_p = np.exp(-newborn_hazard * mort[..., None].astype(np.float64))
            share = self.sex_share * newborn_p
            nxt[..., 0] = (women_start * fert_t)[..., None] * share
            before = nxt.copy() if trace is not None else None
            # 3. net migration, applied to the state in place
            if migration is None:
                requested = np.zeros_like(totals)
                applied = np.zeros_like(totals)
                age0_migration = np.zeros((n, pop.shape[1], 2))
            else:
                rate = np.asarray(migration(draws, t, pop, totals), dtype=np.float64)
                requested = rate / 100.0 * totals
            if migration is not None and profile is not None:
                applied, age0_migration = spread_signed_schedule(
                    pattern,
                    profile,
                    inputs.age_pattern.year_noise(draws, t),
                    totals,
                    requested,
                    nxt,
                    inputs.out_cap,
                )
            elif migration is not None:
                applied, age0_migration = apply_net_migration(
                    requested,
                    nxt,
                    self.in_share,
                    self.out_propensity,
                    inputs.out_cap,
                    tmp,
                    in_total=self.in_total,
                )
            # 4. final births from the mean of 1 January and 31 December women (the
            # state now holds the 31 December women, migrants included)
            women_end = self._women(nxt, t)
            mean_births = 0.5 * (women_start + women_end) * fert_t
            births = mean_births
            if inputs.fertility_noise is not None:
                deviation = inputs.fertility_noise[draws, t].astype(np.float64)
                births = mean_births * np.maximum(1.0 + deviation, 0.0)
            if inputs.birth_noise is not None:
                noise = inputs.birth_noise[draws, t].astype(np.float64)
                births = np.maximum(births + np.sqrt(births) * noise, 0.0)
            newborns = births[..., None] * share
            # A loss of infants larger than the cap allows is cut back.
            guarded = np.maximum(age0_migration, -inputs.out_cap * newborns)
            applied += (guarded - age0_migration).sum(-1)
            nxt[..., 0] = newborns + guarded
            # 5. balance
            new_totals = _row_sum(nxt)
            deaths = totals - surv_total + births - newborns.sum(-1)
            result.births[draws, t] = births
            result.deaths[draws, t] = deaths
            result.net_migration[draws, t] = applied
            result.net_migration_requested[draws, t] = requested
            result.expected_births[draws, t] = mean_births / fert
            if mort is None and inputs.death_noise is None:
                result.expected_deaths[draws, t] = deaths
            else:
                flat = pop.reshape(n * pop.shape[1], -1)
                expected = (flat @ self.q_national[t].astype(self.dtype)).reshape(n, -1)
                # (the draw's national rates when mortality is stochastic: approximated
                # by the mean path here, as expected deaths only describe)
                newborn_q = 1.0 - self.newborn_p_national[t]
                result.expected_deaths[draws, t] = expected + births * (self.sex_share @ newborn_q)
            result.population_total[draws, t + 1] = new_totals
            if trace is not None:
                survivors = before.copy()
                survivors[..., 0] = 0
                cells = nxt.astype(np.float64) - before
                cells[..., 0] = guarded
                trace(
                    draws=draws,
                    t=t,
                    start=pop.copy(),
                    survivors=survivors,
                    newborns=newborns.copy(),
                    migration=cells,
                    end=nxt.copy(),
                    applied=applied.copy(),
                )
            pop, nxt = nxt, pop
            totals = new_totals
            if store is not None:
                store(draws, t + 1, pop)
