"""flask --app app events … / rsvp …: parse, call one service, commit, echo."""
from __future__ import annotations

from pathlib import Path

import click

from ..core.formatting import anzahl
from ..errors import KiPostError
from ..extensions import db
from . import services
from .models import Event


@click.group("events")
def events() -> None:
    """Veranstaltungen anlegen, einladen, Teilnehmerlisten ausgeben."""


@events.command("create")
@click.option("--title", required=True, help="Titel der Veranstaltung.")
@click.option("--start", required=True, help="Beginn in deutscher Zeit, z. B. 2017-02-08T11:00.")
@click.option("--end", required=True, help="Ende in deutscher Zeit, z. B. 2017-02-08T13:00.")
@click.option("--location", default="", help="Ort (Name), z. B. „Ministerium“.")
@click.option("--address", default="", help="Anschrift des Orts.")
@click.option("--room", default="", help="Raum.")
@click.option("--description", default="", help="Beschreibung.")
@click.option("--deadline", default="", help="Antwortfrist, z. B. 2017-02-01T23:59.")
@click.option("--capacity", type=int, default=None, help="Plätze (Eingeladene + Begleitpersonen); leer = unbegrenzt.")
@click.option("--companions", type=int, default=0, show_default=True, help="Erlaubte Begleitpersonen je Einladung.")
def create(title, start, end, location, address, room, description, deadline, capacity, companions) -> None:
    """Eine Veranstaltung als Entwurf anlegen; die letzte Zeile ist ihre Nummer."""
    try:
        event = services.create_event(services.EventData(
            title=title, start=start, end=end, place_name=location, place_address=address, room=room,
            description=description, deadline=deadline or None, capacity=capacity, companions_allowed=companions))
    except KiPostError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Veranstaltung „{event.title}“ angelegt (UID {event.uid}).")
    click.echo(str(event.id))


@events.command("list")
def list_events() -> None:
    """Alle Veranstaltungen: Nummer, Beginn, Status, Eingeladene, Zusagen, Titel."""
    from ..core.formatting import datum_kurz

    for event in services.list_events():
        accepted = sum(1 for i in event.invitations if i.state == "accepted")
        click.echo(f"{event.id}\t{datum_kurz(event.start_at)}\t{event.state_label}\t{len(event.invitations)}\t{accepted}\t{event.title}")


def _event(event_id: int) -> Event:
    try:
        return services.get_event(event_id)
    except KiPostError as error:
        raise click.ClickException(str(error)) from None


@events.command("invite")
@click.argument("event_id", type=int)
@click.option("--list", "list_name", default="Alle KI-Dezernate", show_default=True, help="Name des Verteilers.")
def invite(event_id: int, list_name: str) -> None:
    """Alle noch nicht eingeladenen Kontakte des Verteilers einladen (Mail + Kalendereinladung)."""
    event = _event(event_id)
    try:
        result = services.invite(event, verteiler_id=services.verteiler_id_by_name(list_name))
    except KiPostError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"{anzahl(result.invited, 'Einladung', 'Einladungen')} in den Postausgang gestellt, "
               f"{result.already} bereits eingeladen.")


@events.command("export")
@click.argument("event_id", type=int)
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
def export(event_id: int, path: str) -> None:
    """Teilnehmerliste als .xlsx oder .csv (nach Dateiendung) schreiben."""
    event = _event(event_id)
    fmt = Path(path).suffix.lower().lstrip(".")
    try:
        data = services.export_participants(event, fmt)
    except KiPostError as error:
        raise click.ClickException(str(error)) from None
    Path(path).write_bytes(data)
    click.echo(f"{anzahl(len(event.invitations), 'Eintrag', 'Einträge')} nach {path} geschrieben.")


@click.group("rsvp")
def rsvp() -> None:
    """Antworten aus Kalenderprogrammen (iTIP REPLY) einlesen."""


@rsvp.command("ingest")
@click.argument("path", type=click.Path(exists=True))
def ingest(path: str) -> None:
    """Eine .eml-Datei, ein mbox-Postfach, einen Maildir-Ordner oder einen Ordner mit .eml-Dateien einlesen."""
    try:
        result = services.ingest_path(path)
    except KiPostError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(result.summary())


@rsvp.command("poll-imap")
def poll_imap() -> None:
    """Ungelesene Mails des Funktionspostfachs per IMAP lesen (Einstellungen IMAP_*)."""
    try:
        result = services.poll_imap(commit=db.session.commit)
    except KiPostError as error:
        raise click.ClickException(str(error)) from None
    click.echo(result.summary())


commands: list[click.Command] = [events, rsvp]
