"""flask --app app records export …: an Akten-Export as one ZIP file."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from ..transaction import cli_transaction


@click.group("records", help="Akten-Export: Rundschreiben, Vorgänge und Veranstaltungen als ZIP für die E-Akte.")
def records() -> None:
    pass


@records.command("export", help="Eine Aussendung (Rundschreiben), einen Vorgang im Archiv oder eine Veranstaltung als ZIP "
                                "mit Manifest (CSV und XML) ausführen. Genau eine von --mailing, --run, --event angeben. "
                                "Exit-Status 1: unbekannte Nummer oder noch nicht abgeschlossene Aussendung (nichts geschrieben).")
@click.option("--mailing", "mailing_id", type=int, default=None, help="Nummer der Aussendung (Postausgang) eines Rundschreibens.")
@click.option("--run", "run_id", type=int, default=None, help="Nummer des Vorgangs im Archiv (Briefe erstellt, nicht gemailt).")
@click.option("--event", "event_id", type=int, default=None, help="Nummer der Veranstaltung.")
@click.option("--unvollstaendig", "unfinished", is_flag=True,
              help="Auch eine noch nicht abgeschlossene Aussendung ausführen (als Zwischenstand vermerkt).")
@click.argument("out_path", metavar="ZIEL.zip", type=click.Path(dir_okay=False, path_type=Path))
def export_command(mailing_id: int | None, run_id: int | None, event_id: int | None, unfinished: bool, out_path: Path) -> None:
    from . import services

    chosen = [name for name, value in (("--mailing", mailing_id), ("--run", run_id), ("--event", event_id)) if value is not None]
    if len(chosen) != 1:
        raise click.UsageError("Bitte genau eine von --mailing, --run oder --event angeben.")
    if unfinished and mailing_id is None:
        raise click.UsageError("--unvollstaendig gilt nur mit --mailing.")
    handle, temporary = tempfile.mkstemp(prefix=".akten-", suffix=".zip", dir=out_path.parent if str(out_path.parent) else ".")
    os.close(handle)

    def cleanup() -> None:
        Path(temporary).unlink(missing_ok=True)

    with cli_transaction(cleanup=cleanup):
        if mailing_id is not None:
            package = services.mailing_package(mailing_id, unfinished=unfinished)
        elif run_id is not None:
            package = services.run_package(run_id, include_restricted=True)  # the shell is the administration's
        else:
            package = services.event_package(event_id)  # type: ignore[arg-type]
        package.exported_by = "Kommandozeile (flask records export)"
        package.write(temporary)
    os.replace(temporary, out_path)
    for note in package.notes:
        click.echo(f"Hinweis: {note}", err=True)
    click.echo(f"{len(package.entries)} Dateien und Manifest nach {out_path} geschrieben ({package.subject}).", err=True)


commands: list[click.Command] = [records]
