"""`flask --app app recipients …`: import, export and list the Verteiler from the shell."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from sqlalchemy.exc import IntegrityError

from ..formatting import anzahl
from ..errors import KiPostError
from ..extensions import db
from .importer import CONCURRENT_CHANGE, ImportFileError, apply_import, preview_import
from .services import all_verteiler, count_recipients, describe_filter, export_contacts, verteiler_by_name

EXIT_OK, EXIT_INVALID_ROWS, EXIT_UNREADABLE = 0, 1, 2


@click.group("recipients")
def recipients() -> None:
    """Verteiler: Ansprechpersonen importieren, exportieren, Verteiler auflisten."""


@recipients.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Nur prüfen und zusammenfassen, nichts speichern.")
@click.option("--list", "list_name", default="", help="Alle gültigen Zeilen zusätzlich in diesen Verteiler aufnehmen (wird bei Bedarf angelegt).")
@click.option("--dubletten-uebernehmen", "take_duplicates", is_flag=True,
              help="Zeilen, die wahrscheinlich eine vorhandene Person doppelt anlegen, trotzdem anlegen (sonst übersprungen).")
def import_command(file: Path, dry_run: bool, list_name: str, take_duplicates: bool) -> None:
    """Ansprechpersonen aus einer CSV- oder XLSX-Datei importieren (Abgleich über die E-Mail-Adresse).

    Exit-Status: 0 alle Zeilen gültig, 1 einige Zeilen ungültig (die gültigen sind importiert,
    außer mit --dry-run), 2 Datei nicht lesbar (nichts gespeichert).
    """
    try:
        data = file.read_bytes()
    except OSError as error:
        click.echo(f"Fehler: Die Datei {file} kann nicht gelesen werden ({error.strerror}).", err=True)
        sys.exit(EXIT_UNREADABLE)
    try:
        if dry_run:
            result = preview_import(data, file.name)
        else:
            result = apply_import(data, file.name, list_name=list_name, confirmed_duplicates=take_duplicates)
            db.session.commit()
    except ImportFileError as error:
        db.session.rollback()
        click.echo(f"Fehler: {error}", err=True)
        sys.exit(EXIT_UNREADABLE)
    except IntegrityError:
        db.session.rollback()
        click.echo(f"Fehler: {CONCURRENT_CHANGE}", err=True)
        sys.exit(EXIT_UNREADABLE)
    prefix = "Probelauf, nichts gespeichert: " if dry_run else ""
    click.echo(f"{prefix}{result.summary()}")
    if result.list_name:
        click.echo(f"Verteiler „{result.list_name}“: alle gültigen Zeilen aufgenommen.")
    for error in result.invalid:
        click.echo(str(error))
    for warning in result.warnings:
        click.echo(f"Hinweis: {warning}")
    sys.exit(EXIT_INVALID_ROWS if result.invalid else EXIT_OK)


@recipients.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option("--list", "list_name", default="", help="Nur die aktiven Ansprechpersonen dieses Verteilers (sonst alle).")
def export_command(file: Path, list_name: str) -> None:
    """Ansprechpersonen als FILE.csv (Excel, Semikolon, UTF-8) oder FILE.xlsx exportieren."""
    fmt = file.suffix.lower().lstrip(".")
    if fmt not in ("csv", "xlsx"):
        raise click.UsageError("Die Zieldatei muss auf .csv oder .xlsx enden.")
    try:
        verteiler = verteiler_by_name(list_name) if list_name else None
        data, count = export_contacts(fmt, verteiler=verteiler)
    except KiPostError as error:
        raise click.ClickException(str(error)) from None
    try:
        file.write_bytes(data)
    except OSError as error:
        db.session.rollback()
        raise click.ClickException(f"Die Datei {file} kann nicht geschrieben werden ({error.strerror}).") from None
    db.session.commit()  # the audit entry
    click.echo(f"{anzahl(count, 'Ansprechperson', 'Ansprechpersonen')} nach {file} exportiert.")


@recipients.command("lists")
def lists_command() -> None:
    """Alle Verteiler mit der Zahl ihrer aktiven Ansprechpersonen auflisten."""
    verteiler_list = all_verteiler()
    if not verteiler_list:
        click.echo("Es gibt noch keinen Verteiler.")
    for verteiler in verteiler_list:
        count = anzahl(count_recipients(verteiler), "Ansprechperson", "Ansprechpersonen")
        click.echo(f"{verteiler.name}\t{count}\t{describe_filter(verteiler.filter)}")


@recipients.command("scrub-anonymised")
def scrub_anonymised_command() -> None:
    """Bereits anonymisierte Ansprechpersonen auch aus Postausgang, Einladungen, Kalenderantworten und
    Briefarchiv-Freigaben entfernen (einmal nach dem Update; wiederholbar)."""
    from .erasure import scrub_anonymised

    contacts, counts = scrub_anonymised()
    db.session.commit()
    details = ", ".join(f"{name}: {count}" for name, count in sorted(counts.items())) or "nichts zu tun"
    click.echo(f"{anzahl(contacts, 'anonymisierte Ansprechperson', 'anonymisierte Ansprechpersonen')} bereinigt ({details}).")


commands: list[click.Command] = [recipients]


@recipients.command("review")
def review_command() -> None:
    """Offene Vorschläge aus „Angaben prüfen“ auflisten (Korrekturen und Nachfolgen), je Zeile Nummer, Art,
    Ansprechperson und die Änderung bisher → neu. Übernehmen und Ablehnen unter Verteiler → Vorschläge."""
    from .selfservice import diff_rows, pending_proposals

    proposals = pending_proposals()
    for proposal in proposals:
        contact = proposal.contact
        changes = "; ".join(f"{row.label}: {row.old} → {row.new}" for row in diff_rows(proposal))
        click.echo(f"#{proposal.id} {proposal.kind_label} – {contact.full_name or contact.email} <{contact.email}>: {changes}")
    click.echo(f"{anzahl(len(proposals), 'offener Vorschlag', 'offene Vorschläge')}.")
