r"""Posterior-predictive net migration for the projection kernel.

For draw *d*, municipality *m* and projected calendar year *t* (rates in % of the
1 January population):

.. math::

    r_{dmt} = \gamma_{dt} + \sum_k \beta_{dkt} x_{kmt} + \alpha_{dm} + \varepsilon_{dmt},
    \quad \gamma_{dt} \sim N(\gamma_{\mu,d}, \gamma_{\sigma,d}), \quad
    \beta_{dkt} \sim N(\beta_{\mu,dk}, \beta_{\sigma,dk}),

    \varepsilon_{dmt} \sim N\big(0, \sqrt{\sigma_{base,d}^2 + \sigma_{pop,d}^2
    \cdot 10^4 / N_{dmt}}\big)

with a fresh year effect and fresh coefficients every projected year (the posterior of
the pooled mean and across-year spread, not the last fitted year). Covariates:

* ``vra_L`` (and ``vra_own_L`` / ``vra_neighbours_L``): relative job growth of year
  ``t - L`` weighted by the last observed commuting shares; projected RA from the
  scenario, observed RA for years before the base year.
* ``centrality``: fixed, SSB index / 1000 minus the fit's centre.
* ``ds``: recomputed every year from the projected 1 January population with
  :func:`vekst.features.ds_percent` (through its exact linear weights, so the kernel
  needs one matrix product), centred either on the fit's constant ``ds_center`` or, as
  the features do at fit time, on the mean over municipalities of the year.
* ``housing_L``: completed dwellings of year ``t - L`` per 1,000 inhabitants of that
  year (observed before the base year; planned or recent completions over the projected
  population after it), minus the fit's centre; 0 where unknown
  (:mod:`vekst.projection.housing_plan`).

Random numbers come from one generator per output draw, keyed by ``(seed, draw)``: the
same seed gives the same shocks whatever the chunk size or the scenario, so two scenarios
differ only by their assumptions (common random numbers).
"""

from __future__ import annotations

import dataclasses
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from vekst.io import settings_from
from vekst.models.equation import (
    apply_national_constraint,
    noise_scale,
    standard_shocks,
    state_innovations,
    var1_path,
    zero_sum_ar1_path,
)

if TYPE_CHECKING:
    from vekst.projection.housing_plan import HousingInputs

__all__ = [
    "COMPONENTS",
    "CovariateInputs",
    "MigrationPosterior",
    "MigrationSettings",
    "ModelMigration",
    "StateDynamics",
    "draw_generator",
    "ds_linear_weights",
]

#: Parts of the migration rate recorded per draw, year and municipality (they sum to it).
COMPONENTS: tuple[str, ...] = (
    "national_immigration",
    "centrality",
    "own_jobs",
    "neighbours_jobs",
    "ds",
    "housing",
    "attractiveness",
    "noise",
)
_VRA = re.compile(r"^vra(?P<part>_own|_neighbours)?_(?P<lag>\d+)$")


def draw_generator(seed: int, draw: int) -> np.random.Generator:
    """The random generator of one output draw (independent of chunking)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(draw,))))


def ds_linear_weights(
    employment_rate: np.ndarray, death_probability: np.ndarray, n_age: int
) -> np.ndarray:
    """Per-person weights of the DS numerator and denominator, ``(sex, age, 2)``.

    :func:`vekst.features.ds_components` is a sum over cells of population x weight, so
    feeding it one person per cell recovers the weights exactly; the kernel then gets
    DS of a whole chunk with a single matrix product.

    Parameters
    ----------
    employment_rate, death_probability
        ``(age, sex)`` national rates on the panel's age axis.
    n_age
        Number of ages.
    """
    from vekst.features import ds_components

    n_sex = 2
    basis = np.eye(n_age * n_sex).reshape(n_age * n_sex, n_age, n_sex)
    numerator, denominator = ds_components(basis, employment_rate, death_probability)
    weights = np.stack([numerator, denominator], axis=-1).reshape(n_age, n_sex, 2)
    return weights.transpose(1, 0, 2)


@dataclass
class StateDynamics:
    """The time structure of a fit (``time_structure = "ar1"``), per draw.

    Attributes
    ----------
    names
        State names: ``national_net_migration`` (when a driver), ``year_effect``, then the
        covariates.
    mean, sd, rho
        ``(draw, state)``: process means, innovation sds and AR(1) coefficients.
    block
        Indices of the states whose innovations are correlated (``corr``).
    corr
        ``(draw, len(block), len(block))`` innovation correlation of the block.
    last
        ``(draw, state)``: the states in the last fitted year.
    family, nu
        Innovation family of the states (``"normal"`` or ``"student_t"``).
    loading
        ``(draw, municipality)`` settlement loadings, or ``None``.
    persistence, last_deviation
        ``(draw, municipality)`` AR(1) coefficient and last fitted deviation of the local
        terms, or ``None``.
    gap
        Calendar years between the last fitted year and the first projected year (their
        states are simulated and discarded).
    national_persons
        ``(year,)`` national net migration (persons) from a scenario, or ``None`` for the
        stochastic path.
    regional_group
        ``(municipality,)`` index of each municipality's county in ``regional_last``, or
        ``None`` for a fit without regional shocks.
    regional_persistence, regional_sigma
        ``(draw,)`` AR(1) coefficient and innovation sd of the county shocks.
    regional_last
        ``(draw, county)`` the county shocks in the last fitted year.
    walk_sd, walk_last
        ``(draw, municipality)`` yearly sd of the attractiveness walk and its value in the
        last fitted year, or ``None`` for a fit without the walk.
    """

    names: list[str]
    mean: np.ndarray
    sd: np.ndarray
    rho: np.ndarray
    block: list[int]
    corr: np.ndarray
    last: np.ndarray
    family: str = "normal"
    nu: float = 4.0
    loading: np.ndarray | None = None
    persistence: np.ndarray | None = None
    last_deviation: np.ndarray | None = None
    gap: int = 0
    national_persons: np.ndarray | None = None
    regional_group: np.ndarray | None = None
    regional_persistence: np.ndarray | None = None
    regional_sigma: np.ndarray | None = None
    regional_last: np.ndarray | None = None
    walk_sd: np.ndarray | None = None
    walk_last: np.ndarray | None = None

    def walk_path(self, rng: np.random.Generator, i: int, n_steps: int) -> np.ndarray:
        """One draw's attractiveness walk ``(n_steps, municipality)`` continuing from its
        value in the last fitted year."""
        steps = rng.standard_normal((n_steps, self.walk_sd.shape[1])) * self.walk_sd[i]
        return self.walk_last[i] + np.cumsum(steps, axis=0)

    def regional_path(self, rng: np.random.Generator, i: int, n_steps: int) -> np.ndarray:
        """One draw's county shocks ``(n_steps, county)`` continuing from its last year.

        Innovations are centred over counties each year, as in the fit.
        """
        return zero_sum_ar1_path(
            rng,
            self.regional_last[i],
            self.regional_persistence[i],
            self.regional_sigma[i],
            n_steps,
        )

    def path(self, rng: np.random.Generator, i: int, n_steps: int) -> np.ndarray:
        """One draw's state path ``(n_steps, state)`` continuing from its last state."""
        n_states = len(self.names)
        sd, rho, mean = self.sd[i], self.rho[i], self.mean[i]
        innovations = rng.standard_normal((n_steps, n_states)) * sd
        if self.block:
            block = np.asarray(self.block)
            cov = self.corr[i] * np.outer(sd[block], sd[block])
            chol = np.linalg.cholesky(cov + 1e-12 * np.eye(len(block)))
            innovations[:, block] = state_innovations(rng, chol, self.family, self.nu, n_steps)
        return var1_path(self.last[i], mean, rho, innovations)


@dataclass
class _Chunk:
    start: int
    year: np.ndarray
    beta: np.ndarray
    noise: np.ndarray
    states: np.ndarray | None = None
    deviation: np.ndarray | None = None
    regional: np.ndarray | None = None
    walk: np.ndarray | None = None
    totals: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class MigrationPosterior:
    """The fit's posterior draws that drive the projected migration rates.

    Attributes
    ----------
    covariates
        Covariate names in the order of ``beta_mu``'s last axis.
    beta_mu, beta_sigma
        ``(draw, covariate)``.
    year_effect_mu, year_effect_sigma, sigma_base, sigma_pop
        ``(draw,)``.
    attractiveness
        ``(draw, municipality)``, % per year.
    dynamics
        The fit's time structure (``time_structure = "ar1"``), or ``None`` for year
        effects and coefficients drawn afresh every year.
    noise_family, noise_nu
        Family of the municipal noise (``"normal"`` or ``"student_t"``) and its degrees
        of freedom.
    """

    covariates: list[str]
    beta_mu: np.ndarray
    beta_sigma: np.ndarray
    year_effect_mu: np.ndarray
    year_effect_sigma: np.ndarray
    attractiveness: np.ndarray
    sigma_base: np.ndarray
    sigma_pop: np.ndarray
    dynamics: StateDynamics | None = None
    noise_family: str = "normal"
    noise_nu: float = 5.0


@dataclass(frozen=True, eq=False)
class CovariateInputs:
    """The covariates' values over the projected years (what the scenario and the history
    give, not the fit).

    Attributes
    ----------
    vra_own, vra_neighbours
        ``{lag: (year, municipality)}`` parts of VRA for each projected year (lag applied).
    centrality
        ``(municipality,)``, already centred; ``None`` is zero everywhere.
    ds_weights
        ``(year, sex, age, 2)`` from :func:`ds_linear_weights`, or ``None`` when DS is not
        a covariate.
    ds_center
        Constant subtracted from DS; ``None`` centres on the yearly mean over
        municipalities.
    housing
        Inputs of the ``housing_<lag>`` covariates, or ``None`` when there are none.
    """

    vra_own: dict[int, np.ndarray] = field(default_factory=dict)
    vra_neighbours: dict[int, np.ndarray] = field(default_factory=dict)
    centrality: np.ndarray | None = None
    ds_weights: np.ndarray | None = None
    ds_center: float | None = None
    housing: HousingInputs | None = None


@dataclass(frozen=True)
class MigrationSettings:
    """How the migration rates are drawn: years, random numbers and what is kept.

    Attributes
    ----------
    n_years
        Projected years.
    seed
        Seed of the random generators.
    draw_keys
        Key of each draw's generator (default ``0 .. n - 1``).
    record
        Keep the components ``(draw, year, municipality, component)`` in % (float32),
        with one more year than projected (NaN) so they align with the stock years.
    """

    n_years: int
    seed: int = 0
    draw_keys: np.ndarray | None = None
    record: bool = True


#: The settings groups of :class:`ModelMigration`, in the order of its parameters.
_GROUPS = (MigrationPosterior, CovariateInputs, MigrationSettings)


class ModelMigration:
    """The fitted migration model as a :class:`~vekst.projection.kernel.MigrationRate`.

    Parameters
    ----------
    posterior
        The posterior draws (:class:`MigrationPosterior`).
    inputs
        The covariates' values (:class:`CovariateInputs`); default none.
    settings
        Years, seed and recording (:class:`MigrationSettings`).
    **fields
        Fields of any of the three by name, replacing the object's value (or building
        the object when it is ``None``), e.g. ``ModelMigration(posterior, inputs,
        n_years=5, seed=1)``; an unknown name is a ``TypeError`` naming it.
    """

    def __init__(
        self,
        posterior: MigrationPosterior | None = None,
        inputs: CovariateInputs | None = None,
        settings: MigrationSettings | None = None,
        **fields: Any,
    ) -> None:
        posterior, inputs, settings = _grouped((posterior, inputs, settings), fields)
        self.posterior, self.inputs, self.settings = posterior, inputs, settings
        self.covariates = list(posterior.covariates)
        self.beta_mu = np.asarray(posterior.beta_mu, dtype=np.float64)
        self.beta_sigma = np.asarray(posterior.beta_sigma, dtype=np.float64)
        self.year_effect_mu = np.asarray(posterior.year_effect_mu, dtype=np.float64)
        self.year_effect_sigma = np.asarray(posterior.year_effect_sigma, dtype=np.float64)
        self.attractiveness = np.asarray(posterior.attractiveness, dtype=np.float64)
        self.sigma_base = np.asarray(posterior.sigma_base, dtype=np.float64)
        self.sigma_pop = np.asarray(posterior.sigma_pop, dtype=np.float64)
        self.n_draws, self.n_mun = self.attractiveness.shape
        self.n_years = int(settings.n_years)
        self.seed = int(settings.seed)
        draw_keys = settings.draw_keys
        self.draw_keys = np.arange(self.n_draws) if draw_keys is None else np.asarray(draw_keys)
        centrality = np.zeros(self.n_mun) if inputs.centrality is None else inputs.centrality
        self.centrality = np.asarray(centrality, dtype=np.float64)
        self.housing = inputs.housing
        self.ds_center = inputs.ds_center
        ds_weights = inputs.ds_weights
        self.ds_weights = None if ds_weights is None else np.asarray(ds_weights, dtype=np.float32)
        if self.ds_weights is not None:
            flat = self.ds_weights.reshape(self.ds_weights.shape[0], -1, 2)
            self._ds_numerator = np.ascontiguousarray(flat[..., 0])
            self._ds_denominator = np.ascontiguousarray(flat[..., 1])
        self._terms = self._parse_terms(inputs.vra_own, inputs.vra_neighbours)
        if "ds" in self.covariates and self.ds_weights is None:
            raise ValueError("covariate 'ds' needs ds_weights (see ds_linear_weights).")
        self.components = None
        if settings.record:
            # One extra year (NaN) so the array lines up with the stock years.
            shape = (self.n_draws, self.n_years + 1, self.n_mun, len(COMPONENTS))
            self.components = np.empty(shape, dtype=np.float32)
            self.components[:, -1] = np.nan
        # The shocks of the chunk each kernel thread is on (chunks may run in parallel).
        self._chunks: dict[int, _Chunk] = {}
        self.dynamics = posterior.dynamics
        self.noise_family = posterior.noise_family
        self.noise_nu = float(posterior.noise_nu)
        if self.dynamics is not None:
            self._state_index = {name: i for i, name in enumerate(self.dynamics.names)}

    def _parse_terms(self, vra_own, vra_neighbours) -> list[tuple[int, str, np.ndarray | None]]:
        """(covariate index, component, own/neighbour x per year) for each covariate."""
        terms = []
        for k, name in enumerate(self.covariates):
            match = _VRA.match(name)
            if match:
                lag = int(match["lag"])
                if lag not in vra_own:
                    raise ValueError(f"no VRA values for lag {lag} (covariate '{name}').")
                part = (match["part"] or "").lstrip("_")
                if part in ("", "own"):
                    terms.append((k, "own_jobs", vra_own[lag]))
                if part in ("", "neighbours"):
                    terms.append((k, "neighbours_jobs", vra_neighbours[lag]))
            elif name == "centrality":
                terms.append((k, "centrality", None))
            elif name == "ds":
                terms.append((k, "ds", None))
            elif name.startswith("housing_") and name.rsplit("_", 1)[1].isdigit():
                if self.housing is None:
                    raise ValueError(f"covariate '{name}' needs housing inputs.")
                terms.append((k, "housing", np.array(int(name.rsplit("_", 1)[1]))))
            else:
                raise ValueError(
                    f"the projection does not know covariate '{name}'; it handles vra_<lag>, "
                    "vra_own_<lag>, vra_neighbours_<lag>, centrality, ds and housing_<lag>."
                )
        return terms

    def _shocks(self, draws: slice) -> _Chunk:
        thread = threading.get_ident()
        cached = self._chunks.get(thread)
        if cached is not None and cached.start == draws.start:
            return cached
        n = draws.stop - draws.start
        k = len(self.covariates)
        year = np.empty((n, self.n_years))
        beta = np.empty((n, self.n_years, k))
        noise = np.empty((n, self.n_years, self.n_mun))
        dynamics = self.dynamics
        if dynamics is None:
            for i, key in enumerate(self.draw_keys[draws]):
                rng = draw_generator(self.seed, int(key))
                z = rng.standard_normal((self.n_years, 1 + k + self.n_mun))
                year[i], beta[i] = z[:, 0], z[:, 1 : 1 + k]
                if self.noise_family == "normal":
                    noise[i] = z[:, 1 + k :]
                else:
                    noise[i] = standard_shocks(
                        rng, self.noise_family, self.noise_nu, (self.n_years, self.n_mun)
                    )
            self._chunks[thread] = _Chunk(draws.start, year, beta, noise)
            return self._chunks[thread]
        steps = dynamics.gap + self.n_years
        states = np.empty((n, steps, len(dynamics.names)))
        noise = np.empty((n, steps, self.n_mun))
        regional = None
        if dynamics.regional_group is not None:
            regional = np.empty((n, steps, dynamics.regional_last.shape[1]))
        walk = None if dynamics.walk_sd is None else np.empty((n, steps, self.n_mun))
        for i, key in enumerate(self.draw_keys[draws]):
            rng = draw_generator(self.seed, int(key))
            states[i] = dynamics.path(rng, draws.start + i, steps)
            noise[i] = standard_shocks(rng, self.noise_family, self.noise_nu, (steps, self.n_mun))
            if regional is not None:
                regional[i] = dynamics.regional_path(rng, draws.start + i, steps)
            if walk is not None:
                walk[i] = dynamics.walk_path(rng, draws.start + i, steps)
        self._chunks[thread] = _Chunk(
            draws.start, year, beta, noise, states=states, regional=regional, walk=walk
        )
        return self._chunks[thread]

    def _local_deviation(self, draws: slice, shocks: _Chunk, t: int, scale: np.ndarray):
        """Persistent local deviation ``e_t = phi e_{t-1} + scale * eps_t`` (or iid noise
        when the fit has no persistence); gap years are run through at ``t = 0``."""
        dynamics = self.dynamics
        if dynamics.persistence is None:
            return scale * shocks.noise[:, dynamics.gap + t]
        phi = dynamics.persistence[draws]
        if t == 0:
            shocks.deviation = dynamics.last_deviation[draws].copy()
            for step in range(dynamics.gap):
                shocks.deviation = phi * shocks.deviation + scale * shocks.noise[:, step]
        shocks.deviation = phi * shocks.deviation + scale * shocks.noise[:, dynamics.gap + t]
        return shocks.deviation

    def _national(self, draws, shocks, t, parts, index, totals) -> None:
        """Loadings x national rate, and the constraint that municipal net migration adds
        up to it (the adjustment is booked to the national component)."""
        dynamics = self.dynamics
        if dynamics.loading is None:
            return
        if dynamics.national_persons is not None:
            national = 100.0 * dynamics.national_persons[t] / totals.sum(axis=1)
        else:
            national = shocks.states[
                :, dynamics.gap + t, self._state_index["national_net_migration"]
            ]
        loading = dynamics.loading[draws]
        parts[..., index["national_immigration"]] += loading * national[:, None]
        _, adjustment = apply_national_constraint(parts.sum(-1), totals, loading, national)
        parts[..., index["national_immigration"]] += adjustment

    def ds_values(self, t: int, population: np.ndarray) -> np.ndarray:
        """Centred DS (%) of the chunk's 1 January population ``(draw, municipality)``."""
        n, n_mun = population.shape[:2]
        flat = population.reshape(n * n_mun, -1)
        # Two matrix-vector products are about twice as fast as one product with n = 2.
        numerator = (flat @ self._ds_numerator[t]).astype(np.float64).reshape(n, n_mun)
        denominator = (flat @ self._ds_denominator[t]).astype(np.float64).reshape(n, n_mun)
        with np.errstate(divide="ignore", invalid="ignore"):
            ds = np.where(denominator > 0, 100.0 * numerator / denominator, 0.0)
        if self.ds_center is None:
            return ds - ds.mean(axis=1, keepdims=True)
        return ds - self.ds_center

    def _housing_value(self, shocks: _Chunk, t: int, lag: int, totals: np.ndarray):
        """Centred completions per 1,000 of projected year ``t - lag``, ``(draw, mun)``;
        a projected year's rate uses the population of 1 January of that year."""
        housing = self.housing
        year = housing.base_year + t - lag
        population = shocks.totals[t - lag] if t >= lag else totals
        return housing.value(year, population)

    def __call__(
        self, draws: slice, t: int, population: np.ndarray, totals: np.ndarray
    ) -> np.ndarray:
        """Net migration rate (%) of the chunk ``draws`` in projected year ``t``, ``(draw,
        municipality)``, from the 1 January ``population`` and its ``totals`` (see
        :class:`~vekst.projection.kernel.MigrationRate`); records the components."""
        shocks = self._shocks(draws)
        n = draws.stop - draws.start
        parts = np.zeros((n, self.n_mun, len(COMPONENTS)))
        index = {name: i for i, name in enumerate(COMPONENTS)}
        if self.dynamics is None:
            year_effect = (
                self.year_effect_mu[draws] + self.year_effect_sigma[draws] * shocks.year[:, t]
            )
            beta = self.beta_mu[draws] + self.beta_sigma[draws] * shocks.beta[:, t]
        else:
            states = shocks.states[:, self.dynamics.gap + t]
            year_effect = states[:, self._state_index["year_effect"]]
            beta = states[:, [self._state_index[c] for c in self.covariates]]
        parts[..., index["national_immigration"]] = year_effect[:, None]
        shocks.totals[t] = np.array(totals, dtype=np.float64)
        for k, component, x in self._terms:
            if component == "centrality":
                value = self.centrality[None, :]
            elif component == "ds":
                value = self.ds_values(t, population)
            elif component == "housing":
                value = self._housing_value(shocks, t, int(x), totals)
            else:
                value = x[t][None, :]
            parts[..., index[component]] += beta[:, k, None] * value
        parts[..., index["attractiveness"]] = self.attractiveness[draws]
        if shocks.walk is not None:
            parts[..., index["attractiveness"]] += shocks.walk[:, self.dynamics.gap + t]
        scale = noise_scale(self.sigma_base[draws], self.sigma_pop[draws], totals)
        if self.dynamics is None:
            parts[..., index["noise"]] = scale * shocks.noise[:, t]
        else:
            parts[..., index["noise"]] = self._local_deviation(draws, shocks, t, scale)
            if shocks.regional is not None:
                # Booked with the local deviation: both are what the drivers leave.
                regional = shocks.regional[:, self.dynamics.gap + t]
                parts[..., index["noise"]] += regional[:, self.dynamics.regional_group]
            self._national(draws, shocks, t, parts, index, totals)
        if self.components is not None:
            self.components[draws, t] = parts
        return parts.sum(-1)


def _grouped(groups: tuple, fields: dict[str, Any]) -> tuple:
    """The three settings objects of :class:`ModelMigration` with ``fields`` applied, each
    field to the group that has it (a group given as ``None`` is built from its fields)."""
    owner = {f.name: kind for kind in _GROUPS for f in dataclasses.fields(kind)}
    unknown = sorted(set(fields) - set(owner))
    if unknown:
        raise TypeError(
            f"ModelMigration got unknown option(s) {unknown}; the options are the fields "
            f"of MigrationPosterior, CovariateInputs and MigrationSettings: {sorted(owner)}."
        )
    return tuple(
        settings_from(
            kind,
            group,
            {name: value for name, value in fields.items() if owner[name] is kind},
            f"ModelMigration ({kind.__name__})",
        )
        for kind, group in zip(_GROUPS, groups, strict=True)
    )
