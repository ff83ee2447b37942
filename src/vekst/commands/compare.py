"""``vekst compare``: fit several specs on one panel and rank them by PSIS-LOO."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from vekst.errors import UsageError

console = Console(width=80)

#: Columns of ``az.compare`` shown, in order, with short headers that fit 80 columns.
COLUMNS = {
    "rank": "rank",
    "elpd_loo": "elpd_loo",
    "se": "se",
    "elpd_diff": "diff",
    "dse": "dse",
    "p_loo": "p_loo",
    "weight": "weight",
    "warning": "warn",
}


class CompareError(UsageError):
    """The fits cannot be compared (other observations); the message says why."""


def compare_fits(fits: dict) -> object:
    """``az.compare`` of fits on the migration observations' pointwise log-likelihood.

    Parameters
    ----------
    fits
        Spec name -> :class:`~vekst.fit.FitResult` (or InferenceData with a
        ``log_likelihood`` group).

    Returns
    -------
    pandas.DataFrame
        ArviZ's comparison table, best model first.

    Raises
    ------
    CompareError
        When the fits were made on different observations, or one has no pointwise
        log-likelihood.
    """
    import arviz as az

    idatas = {name: getattr(fit, "idata", fit) for name, fit in fits.items()}
    without = [name for name, idata in idatas.items() if "log_likelihood" not in idata.groups()]
    if without:
        raise CompareError(
            f"the fit of {', '.join(without)} has no pointwise log-likelihood; fit with "
            "`fit_model(..., log_likelihood=True)` (as `vekst compare` does)."
        )
    sizes = {name: int(i.log_likelihood["net_migration_obs"].size) for name, i in idatas.items()}
    per_draw = {
        name: sizes[name]
        // (i.log_likelihood.sizes["chain"] * i.log_likelihood.sizes["draw"])
        for name, i in idatas.items()
    }
    if len(set(per_draw.values())) > 1:
        raise CompareError(
            "the specs were fitted on different migration observations "
            f"({per_draw}); compare specs that use the same years and municipalities."
        )
    return az.compare(idatas, var_name="net_migration_obs")


def comparison_text(table) -> str:
    """The comparison as plain text of at most 80 columns."""
    shown = table[[c for c in COLUMNS if c in table.columns]].rename(columns=COLUMNS)
    return shown.to_string(
        float_format=lambda v: f"{v:.1f}" if abs(v) >= 1 else f"{v:.2f}", line_width=80
    )


def register(app: typer.Typer) -> None:
    """Add ``vekst compare``."""

    @app.command("compare")
    def compare_command(
        specs: list[Path] = typer.Argument(..., help="Model spec files (.toml), two or more."),
        panel: Path = typer.Option(None, help="Panel (netCDF); default the embedded data."),
        draws: int = typer.Option(500, help="Draws per chain after tuning."),
        tune: int = typer.Option(500, help="Tuning steps per chain."),
        chains: int = typer.Option(4, help="Number of chains."),
        seed: int = typer.Option(20240101, help="Random seed."),
    ) -> None:
        """Fit each spec on the same panel and rank them by PSIS-LOO.

        PSIS-LOO: expected log predictive density of the net migration observations.
        """
        import xarray as xr

        from vekst import load_default
        from vekst.data.panel import validate_panel
        from vekst.models.spec import load_spec
        from vekst.workflow import SamplerConfig, fit_panel

        if len(specs) < 2:
            console.print("[red]error:[/] give two or more spec files to compare.")
            raise typer.Exit(code=2)
        if panel is None:
            data = load_default()
        else:
            data = validate_panel(
                xr.load_dataset(panel, engine="h5netcdf"), code_vintage=None, source=str(panel)
            )
        config = SamplerConfig(draws=draws, tune=tune, chains=chains, seed=seed, progress=False)
        fits = {}
        for path in specs:
            spec = load_spec(path)
            name = spec.name if spec.name not in fits else f"{spec.name} ({path})"
            with console.status(f"fitting {name}"):
                fits[name] = fit_panel(data, spec, config, log_likelihood=True)
            d = fits[name].diagnostics
            gate = "passed" if d.converged else "FAILED: " + "; ".join(d.problems)
            console.print(f"{name}: convergence gate {gate}")
        try:
            table = compare_fits(fits)
        except CompareError as error:
            console.print(f"[red]error:[/] {error}")
            raise typer.Exit(code=2) from None
        console.print(comparison_text(table), highlight=False, soft_wrap=True)
