"""``vekst fetch``: download the panel's sources from Statistics Norway (SSB).

The tables, their ids and codes are listed in :mod:`vekst.data.ssb_tables`; the help text
below is generated from that list, so it always documents every table fetched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vekst.data.ssb_tables import ALL_TABLES

console = Console(stderr=True)

TABLE_KEYS: tuple[str, ...] = tuple(spec.key for spec in ALL_TABLES)
_TABLES_OPTION_HELP = (
    f"Tables to fetch (repeat the option); default all: {', '.join(TABLE_KEYS)}. "
    "'population' is always fetched."
)


def _help_text() -> str:
    lines = [
        "Fetch population, components of change, employment, commuting, housing and "
        "national employment rates from Statistics Norway (SSB) and assemble them into a "
        "panel on 2024 municipality codes.",
        "",
        "Writes OUT/panel.nc, OUT/tables/<table>.csv.gz and OUT/provenance.json; responses "
        "are cached in OUT/cache (or --cache-dir), so an interrupted run resumes where it "
        "stopped. Requests stay below SSB's published limits (30 requests per minute per "
        "IP address, 800,000 cells per request).",
        "",
        "Tables (key (SSB table id): title -> panel variables):",
        "",
    ]
    for spec in ALL_TABLES:
        lines.append(f"* {spec.help_line()}")
        lines.append("")
    lines.append(
        "Table ids and codes live in src/vekst/data/ssb_tables.py; when SSB renames a table "
        "or a code, the fetch stops with the codes SSB has now, and that file is the one to "
        "edit. Data: Statistisk sentralbyrå, CC BY 4.0."
    )
    return "\n".join(lines)


def _parse_to(value: str) -> int | None:
    if value.strip().upper() == "LATEST":
        return None
    try:
        return int(value)
    except ValueError as error:
        raise typer.BadParameter(f"--to must be a year or LATEST, got {value!r}") from error


def register(app: typer.Typer) -> None:
    """Add ``vekst fetch``."""
    keys = list(TABLE_KEYS)

    @app.command("fetch", help=_help_text())
    def fetch_command(
        out: Annotated[Path, typer.Option("--out", help="Folder for the panel and tables.")],
        first_year: Annotated[
            int, typer.Option("--from", help="First year (the code table starts in 2000).")
        ] = 2000,
        to: Annotated[str, typer.Option("--to", help="Last year, or LATEST.")] = "LATEST",
        tables: Annotated[
            list[str] | None,
            typer.Option(
                "--tables",
                help=_TABLES_OPTION_HELP,
            ),
        ] = None,
        cache_dir: Annotated[
            Path | None, typer.Option("--cache-dir", help="Response cache (default OUT/cache).")
        ] = None,
        refresh: Annotated[
            bool,
            typer.Option("--refresh", help="Fetch every chunk again instead of using the cache."),
        ] = False,
        base: Annotated[
            Path | None,
            typer.Option(
                "--base",
                help="A panel (netCDF) whose variables are kept where not fetched; fetched "
                "ones (e.g. observed births) replace its derived ones.",
            ),
        ] = None,
        municipality_info: Annotated[
            Path | None,
            typer.Option(
                "--municipality-info",
                help="CSV with columns code, name, county, region, region_name, centrality "
                "(2024 codes); default: the embedded panel's coordinates.",
            ),
        ] = None,
        lang: Annotated[str, typer.Option("--lang", help="Label language: no or en.")] = "no",
    ) -> None:
        import pandas as pd
        import xarray as xr
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from vekst.data.fetch import FetchAssemblyError, fetch_panel, write_outputs
        from vekst.data.panel import PanelValidationError
        from vekst.data.ssb import SsbClient, SsbError
        from vekst.io import check_output_file

        # Found before any request to SSB, not after minutes of fetching.
        check_output_file(out / "panel.nc", what="--out")
        last_year = _parse_to(to)
        unknown = [t for t in tables or [] if t not in keys]
        if unknown:
            raise typer.BadParameter(f"unknown table(s) {unknown}; choose from {keys}")
        chosen = list(tables) if tables else keys
        info = None
        if municipality_info is not None:
            info = pd.read_csv(
                municipality_info, dtype={"code": str, "county": str, "region": str}
            ).set_index("code")
        base_panel = xr.load_dataset(base, engine="h5netcdf") if base is not None else None
        client = SsbClient(cache_dir=cache_dir or out / "cache", refresh=refresh, lang=lang)

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            overall = progress.add_task("tables", total=len(chosen) + ("population" not in chosen))
            pages: dict[str, int] = {}

            def on_table(spec) -> None:
                if pages:
                    progress.advance(overall)
                pages[spec.key] = progress.add_task(
                    f"  {spec.key} (SSB {spec.table_id}) pages", total=None
                )

            def on_chunk(key: str, done: int, total: int) -> None:
                progress.update(pages[key], completed=done, total=total)

            try:
                result = fetch_panel(
                    client,
                    first_year=first_year,
                    last_year=last_year,
                    tables=chosen,
                    progress=on_chunk,
                    on_table=on_table,
                    municipality_info=info,
                    base=base_panel,
                )
            except (SsbError, FetchAssemblyError, PanelValidationError) as error:
                progress.stop()
                console.print(f"[red]fetch failed:[/] {error}")
                raise typer.Exit(code=error.exit_code) from error
            progress.advance(overall)

        written = write_outputs(result, out)
        years = result.panel["year"].values
        console.print(
            f"panel: {result.panel.sizes['municipality']} municipalities, years "
            f"{years[0]}-{years[-1]}, variables {', '.join(map(str, result.panel.data_vars))}"
        )
        console.print(f"requests sent: {result.requests}")
        for name, path in written.items():
            console.print(f"  {name}: {path}")
