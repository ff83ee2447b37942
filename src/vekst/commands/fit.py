"""``vekst fit``: fit a model spec to a panel and print coefficients and diagnostics."""

from __future__ import annotations

import enum
import warnings
from pathlib import Path

import numpy as np
import typer
import xarray as xr
from rich.table import Table

from vekst.commands.ui import FIT_DRAWS, FIT_TARGET_ACCEPT, FIT_TUNE, console, err_console, step


class Sampler(enum.StrEnum):
    """NUTS implementations a fit can use."""

    nutpie = "nutpie"
    pymc = "pymc"
    numpyro = "numpyro"


def coefficient_table(fit_result, ols) -> Table:
    """Pooled posterior, per-year posterior means and OLS side by side."""
    from vekst.report.html_helpers import covariate_label

    posterior = fit_result.idata.posterior
    table = Table(title="Migration coefficients (outcome: net migration, % of population)")
    table.add_column("covariate")
    # One value per line and never split (at 80 columns a wrap inside a value, "0.071
    # [0.036," / "0.109]", was hard to read); the covariate's name wraps instead.
    table.add_column("pooled mean\n[94 % interval]", justify="right", no_wrap=True)
    table.add_column("across-\nyear sd", justify="right", no_wrap=True)
    table.add_column("OLS\npooled\n(se)", justify="right", no_wrap=True)
    table.add_column("years:\nBayes mean / OLS", justify="left", no_wrap=True)
    for cov in posterior["covariate"].values:
        beta = posterior["beta_mu"].sel(covariate=cov).values.ravel()
        low, high = (float(q) for q in _quantiles(beta))
        sigma = (
            f"{float(posterior['beta_sigma'].sel(covariate=cov).mean()):.3f}"
            if "beta_sigma" in posterior
            else "-"
        )
        years = []
        beta_year = posterior["beta_year"].sel(covariate=cov).mean(("chain", "draw"))
        for year in beta_year["year"].values:
            ols_value = float(ols.beta_year.sel(covariate=cov, year=year))
            if ols_value == ols_value:  # only years where OLS could be fitted
                years.append(f"{year}: {float(beta_year.sel(year=year)):.3f}/{ols_value:.3f}")
        table.add_row(
            covariate_label(str(cov)),
            f"{beta.mean():.3f}\n[{low:.3f}, {high:.3f}]",
            sigma,
            f"{float(ols.beta.sel(covariate=cov)):.3f}\n"
            f"({float(ols.beta_se.sel(covariate=cov)):.3f})",
            "\n".join(years[-4:]),
            end_section=True,
        )
    return table


def _quantiles(values):
    return np.quantile(values, [0.03, 0.97])


def county_shock_summary(
    posterior: xr.Dataset, county_names: dict[str, str] | None = None, n_largest: int = 3
) -> str | None:
    """One paragraph on a fit's county shocks (``regional_shocks = "county"``), or None.

    Their innovation sd and persistence (median and 94 % interval) and the counties with
    the largest posterior mean shock in the last fitted year, which the projection
    continues from, named from ``county_names`` (code to name) where given.
    """
    names = county_names or {}
    if "regional_shock" not in posterior:
        return None

    def summary(name: str, digits: int) -> str:
        values = posterior[name].values.ravel()
        low, high = _quantiles(values)
        return f"{np.median(values):.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"

    last = posterior["regional_shock"].isel(year=-1).mean(("chain", "draw"))
    year = int(posterior["year"].values[-1])
    largest = _largest(last, "county", names, n_largest)
    return (
        f"County shocks (% of population a year): innovation sd {summary('regional_sigma', 3)}, "
        f"persistence {summary('regional_persistence', 2)}; largest in {year}: {largest}."
    )


def attractiveness_walk_summary(
    posterior: xr.Dataset, names: dict[str, str] | None = None, n_largest: int = 3
) -> str | None:
    """One paragraph on a fit's attractiveness walk (``attractiveness_walk = true``), or
    None.

    Its yearly sd at the mean size (median and 94 % interval), the range of the places'
    posterior mean sds, and the municipalities whose attractiveness in the last
    fitted year lies furthest from their mean over the fitted years (posterior mean): the
    level the projection walks on from, named from ``names`` (code to name) where given.
    """
    if "attract_walk_last" not in posterior:
        return None
    names = names or {}
    sigma = posterior["attract_walk_sigma"].values.ravel()
    low, high = _quantiles(sigma)
    sd = posterior["attract_walk_sd"].mean(("chain", "draw")).values
    walking = sd > 0
    last = posterior["attract_walk_last"].mean(("chain", "draw"))
    moved = _largest(last, "municipality", names, n_largest)
    year = int(posterior["year"].values[-1])
    first = int(posterior["year"].values[0])
    size = (
        "the mean size"
        if walking.all()
        else f"the mean size of the {walking.sum()} of {walking.size} places that walk"
    )
    return (
        f"Attractiveness walk (% of population a year): yearly sd {np.median(sigma):.3f} "
        f"[{low:.3f}, {high:.3f}] at {size}, {sd[walking].min():.3f}-"
        f"{sd[walking].max():.3f} by size; furthest from their {first}-{year} mean in "
        f"{year}: {moved}."
    )


def _largest(values: xr.DataArray, dim: str, names: dict[str, str], n: int) -> str:
    """The ``n`` entries of ``values`` largest in absolute value, as "name +0.12, ..."."""
    codes = values[dim].values.astype(str)
    order = np.argsort(-np.abs(values.values))[:n]
    return ", ".join(f"{names.get(codes[i], codes[i])} {values.values[i]:+.2f}" for i in order)


def _names(panel: xr.Dataset, codes: str, names: str) -> dict[str, str] | None:
    """Code-to-name map from two of the panel's coordinates, or None without names."""
    if names not in panel.coords:
        return None
    return dict(
        zip(panel[codes].values.astype(str), panel[names].values.astype(str), strict=True)
    )


def diagnostics_table(diagnostics) -> Table:
    """The convergence summary as a table."""
    table = Table(title="Diagnostics")
    table.add_column("check")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    table.add_row("max R-hat", f"{diagnostics.rhat_max:.3f}", "≤ 1.01")
    table.add_row("min bulk ESS", f"{diagnostics.ess_bulk_min:.0f}", "≥ 400")
    table.add_row("min tail ESS", f"{diagnostics.ess_tail_min:.0f}", "≥ 400")
    table.add_row("divergences", str(diagnostics.divergences), "0")
    table.add_row("min BFMI", f"{diagnostics.bfmi_min:.2f}", "≥ 0.3")
    return table


def run_fit(spec_path: Path | None, out: Path, config=None, *, panel=None):
    """Fit ``spec_path`` on ``panel`` (default: the embedded data) and save to ``out``.

    Parameters
    ----------
    spec_path
        Model spec (.toml); ``None`` for ``models/vareide2022.toml``.
    out
        Where to write the fit (netCDF).
    config
        :class:`vekst.workflow.SamplerConfig`; default 4 chains of 2500 draws after 1500
        tuning steps (the command's defaults).
    panel
        A panel instead of the embedded data.

    Returns
    -------
    (FitResult, OLSResult)
        The fit and the OLS baseline on the same data.
    """
    from vekst import load_default
    from vekst.data.panel import load_panel
    from vekst.fit import check_sampler_settings, save_fit
    from vekst.io import check_output_file
    from vekst.models.ols import fit_ols
    from vekst.models.spec import load_spec
    from vekst.workflow import SamplerConfig, fit_panel, model_inputs

    if config is None:
        config = SamplerConfig(draws=2500, tune=1500, chains=4)
    # Everything a user can get wrong is checked before features are computed or sampled.
    check_output_file(out)
    check_sampler_settings(
        draws=config.draws, tune=config.tune, chains=config.chains, sampler=config.sampler
    )
    spec = load_spec(spec_path)
    if panel is None:
        panel = load_default()
    elif not isinstance(panel, xr.Dataset):
        panel = load_panel(panel)
    with step("computing features (VRA, centrality, DS, expected births)"):
        migration, births, deaths = model_inputs(panel, spec)
    console.print(
        f"[bold]{spec.name}[/]: {len(migration.municipalities)} municipalities x "
        f"{len(migration.years)} years ({migration.years[0]}-{migration.years[-1]}); "
        f"births block: {'yes' if births else 'no'}; deaths block: {'yes' if deaths else 'no'}"
    )
    result = fit_panel(panel, spec, config)
    with warnings.catch_warnings():
        # Municipalities without a complete year get NaN OLS residual attractiveness; the
        # printed tables do not use it, so numpy's warning is only noise to a user.
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        ols = fit_ols(migration)
    save_fit(result, out)
    console.print(coefficient_table(result, ols))
    posterior = result.idata.posterior
    for paragraph in (
        county_shock_summary(posterior, _names(panel, "county", "county_name")),
        attractiveness_walk_summary(posterior, _names(panel, "municipality", "name")),
    ):
        if paragraph:
            console.print(paragraph)
    console.print(diagnostics_table(result.diagnostics))
    timing = result.timings
    console.print(
        f"compile {timing.get('compile_s', float('nan')):.1f} s, "
        f"sampling {timing['sampling_s']:.1f} s; saved to {out}"
    )
    if result.diagnostics.converged:
        console.print("[green]convergence gate: passed[/]")
    else:
        err_console.print(
            "[red]convergence gate: FAILED[/] - "
            + "; ".join(result.diagnostics.problems)
            + ". Projections from this fit are refused unless --allow-unconverged is given."
        )
    return result, ols


def register(app: typer.Typer) -> None:
    """Add ``vekst fit``."""

    @app.command("fit")
    def fit_command(
        spec: Path = typer.Option(
            None,
            dir_okay=False,
            help="Model spec (.toml); default models/vareide2022.toml.",
        ),
        out: Path = typer.Option(Path("fit.nc"), help="Where to write the fit (netCDF)."),
        draws: int = typer.Option(FIT_DRAWS, min=1, help="Draws per chain after tuning."),
        tune: int = typer.Option(FIT_TUNE, min=0, help="Tuning steps per chain."),
        chains: int = typer.Option(4, min=1, help="Number of chains."),
        target_accept: float = typer.Option(
            FIT_TARGET_ACCEPT, min=0.5, max=0.999,
            help="NUTS target acceptance (raise it if the fit reports divergences).",
        ),
        seed: int = typer.Option(20240101, help="Random seed (results are reproducible)."),
        sampler: Sampler = typer.Option(Sampler.nutpie, help="The NUTS implementation."),
        panel: Path = typer.Option(
            None, "--panel", help="Panel netCDF (from fetch or simulate); default: embedded."
        ),
    ) -> None:
        """Fit the hierarchical model on a panel; print coefficients and diagnostics."""
        from vekst.workflow import SamplerConfig

        config = SamplerConfig(
            draws=draws, tune=tune, chains=chains, seed=seed, sampler=str(sampler),
            target_accept=target_accept,
        )
        result, _ = run_fit(spec, out, config, panel=panel)
        if not result.diagnostics.converged:
            raise typer.Exit(code=3)
