"""``vekst info``: what the embedded (or a given) panel holds."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from vekst.commands.ui import console


def info_tables(panel) -> list[Table]:
    """Summary tables: overview, national population by year, variables, the border
    transfers the panel's build moved, and suspected ones (when any)."""
    from vekst.data.border_transfers import moved_transfers, suspected_border_transfers
    from vekst.data.panel import describe_availability
    from vekst.data.panel_checks import vintage_of

    overview = Table(title="Panel", show_header=False)
    overview.add_column("")
    overview.add_column("")
    years = panel["year"].values
    overview.add_row(
        "municipalities",
        f"{panel.sizes['municipality']} (code vintage {vintage_of(panel, 'panel') or '?'})",
    )
    overview.add_row("labour-market regions", str(len(set(panel["region"].values.tolist()))))
    overview.add_row("counties", str(len(set(panel["county"].values.tolist()))))
    overview.add_row("stock years", f"{years[0]}-{years[-1]} (population on 1 January)")
    overview.add_row("ages", f"{int(panel['age'].values[0])}-{int(panel['age'].values[-1])}+")

    national = Table(title="National population on 1 January")
    national.add_column("year", justify="right")
    national.add_column("population", justify="right")
    national.add_column("change", justify="right")
    totals = panel["population"].sum(("municipality", "age", "sex")).values
    for i, year in enumerate(years):
        change = "" if i == 0 else f"{totals[i] - totals[i - 1]:+,.0f}"
        national.add_row(str(year), f"{totals[i]:,.0f}", change)

    variables = Table(title="Variables: observed or derived")
    # Names are what a user types (panel["net_migration_total"]): never cut them; the
    # status and units wrap instead (at 80 columns "employed_workpla…" hid the name).
    variables.add_column("variable", no_wrap=True)
    variables.add_column("kind", no_wrap=True)
    variables.add_column("years", no_wrap=True)
    variables.add_column("status")
    variables.add_column("units")
    for name, entry in describe_availability(panel).items():
        span = entry["years"]
        variables.add_row(
            name,
            entry["kind"],
            "-" if span is None else f"{span[0]}-{span[1]}",
            "[yellow]derived (estimate)[/]" if entry["derived"] else "observed",
            str(panel[name].attrs.get("units", "")),
        )
    tables = [overview, national, variables]
    moved = moved_transfers(panel)
    if moved:
        names = dict(
            zip(panel["municipality"].values.astype(str), panel["name"].values.astype(str),
                strict=True)
        )
        table = Table(
            title="Border transfers moved onto the later borders",
            caption=(
                "Years before each move hold the area in the place that gained it, as a "
                "fixed share of the other's cells (data/README.md)."
            ),
        )
        for column in ("from 1 January", "from", "to", "persons"):
            right = column in ("from 1 January", "persons")
            table.add_column(column, justify="right" if right else "left")
        for transfer in moved:
            table.add_row(
                str(transfer.effective),
                f"{transfer.losing} {names.get(transfer.losing, '')}".strip(),
                f"{transfer.gaining} {names.get(transfer.gaining, '')}".strip(),
                f"{transfer.persons:,}",
            )
        tables.append(table)
    transfers = suspected_border_transfers(panel)
    if len(transfers):
        table = Table(
            title="Suspected border transfers",
            caption=(
                "One place gains what a neighbour in its county loses. Unusual changes in "
                "persons (beyond each place's median change in the three years either "
                "side), booked as net migration in the flow year. Check them against the "
                "source's border changes before trusting those years."
            ),
        )
        for column in ("year", "gaining", "losing", "gained", "lost"):
            right = column in ("year", "gained", "lost")
            table.add_column(column, justify="right" if right else "left")
        for row in transfers.itertuples(index=False):
            table.add_row(
                str(row.year), row.gaining, row.losing, f"{row.gained:,}", f"{row.lost:,}"
            )
        tables.append(table)
    return tables


def register(app: typer.Typer) -> None:
    """Add ``vekst info``."""

    @app.command("info")
    def info_command(
        panel_file: Path = typer.Option(
            None,
            "--panel",
            dir_okay=False,
            help="A panel netCDF file; default: the embedded data.",
        ),
    ) -> None:
        """Summarise the panel: municipalities, years, national population, what is derived."""
        from vekst import load_default
        from vekst.data.panel import load_panel

        panel = load_default() if panel_file is None else load_panel(panel_file)
        for table in info_tables(panel):
            console.print(table)
        console.print(
            "Sources: Statistisk sentralbyrå (NLOD 2.0 / CC BY 4.0); Human Mortality Database "
            "and Human Fertility Database (CC BY 4.0). See data/README.md."
        )
