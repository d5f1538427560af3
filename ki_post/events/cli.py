"""flask --app app events … / rsvp …: parse, call one service, commit, echo."""
from __future__ import annotations

from pathlib import Path

import click

from ..formatting import anzahl
from ..errors import KiPostError
from ..extensions import db
from ..transaction import cli_transaction
from . import badge_cli, services
from .models import Event, InvitationState


@click.group("events")
def events() -> None:
    """Veranstaltungen anlegen, ändern, absagen, einladen, erinnern, Teilnehmerlisten ausgeben."""


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
    with cli_transaction():
        event = services.create_event(services.EventData(
            title=title, start=start, end=end, place_name=location, place_address=address, room=room,
            description=description, deadline=deadline or None, capacity=capacity, companions_allowed=companions))
    click.echo(f"Veranstaltung „{event.title}“ angelegt (UID {event.uid}).")
    click.echo(str(event.id))


@events.command("list")
def list_events() -> None:
    """Alle Veranstaltungen: Nummer, Beginn, Status, Eingeladene, Zusagen, Titel."""
    from ..formatting import datum_kurz

    for event in services.list_events():
        accepted = sum(1 for i in event.invitations if i.state == InvitationState.ZUGESAGT)
        click.echo(f"{event.id}\t{datum_kurz(event.start_at)}\t{event.state_label}\t{len(event.invitations)}\t{accepted}\t{event.title}")


def _event(event_id: int) -> Event:
    try:
        return services.get_event(event_id)
    except KiPostError as error:
        raise click.ClickException(str(error)) from None


_DRAFT_HELP = "Nur als Entwurf im Postausgang anlegen (Vorschau, Testnachricht und „Senden“ in der Oberfläche)."


def _sent_or_draft(mailing_id: int | None, draft: bool) -> str:
    if mailing_id is None:
        return ""
    return f" (Aussendung {mailing_id}: {'Entwurf' if draft else 'wird gesendet'})"


@events.command("invite")
@click.argument("event_id", type=int)
@click.option("--list", "list_name", default=None, help="Name des Verteilers; ohne Angabe alle aktiven Kontakte.")
@click.option("--entwurf", "draft", is_flag=True, help=_DRAFT_HELP)
def invite(event_id: int, list_name: str | None, draft: bool) -> None:
    """Alle noch nicht eingeladenen Kontakte des Verteilers (ohne --list: alle aktiven Kontakte) einladen
    (Mail + Kalendereinladung)."""
    event = _event(event_id)
    with cli_transaction():
        verteiler_id = services.verteiler_id_by_name(list_name) if list_name else None
        result = services.invite(event, verteiler_id=verteiler_id, start=not draft)
    skipped = f", {result.skipped} übersprungen (Grund im Postausgang)" if result.skipped else ""
    click.echo(f"{anzahl(result.invited, 'Einladung', 'Einladungen')} in den Postausgang gestellt, "
               f"{result.already} bereits eingeladen{skipped}{_sent_or_draft(result.mailing_id, draft)}.")


@events.command("update")
@click.argument("event_id", type=int)
@click.option("--title", default=None, help="Neuer Titel.")
@click.option("--start", default=None, help="Neuer Beginn in deutscher Zeit, z. B. 2017-02-08T10:30.")
@click.option("--end", default=None, help="Neues Ende in deutscher Zeit, z. B. 2017-02-08T12:30 (ohne: Dauer bleibt).")
@click.option("--location", default=None, help="Neuer Ort (Name).")
@click.option("--address", default=None, help="Neue Anschrift des Orts.")
@click.option("--room", default=None, help="Neuer Raum.")
@click.option("--description", default=None, help="Neue Beschreibung.")
@click.option("--entwurf", "draft", is_flag=True, help=_DRAFT_HELP)
def update(event_id: int, title, start, end, location, address, room, description, draft: bool) -> None:
    """Eine Veranstaltung ändern. Noch nicht versendete Nachrichten werden sofort neu erstellt; wer die
    bisherigen Angaben schon hat, erhält eine Aktualisierung, die nennt, was sich geändert hat."""
    event = _event(event_id)
    with cli_transaction():
        if start and not end:  # a new beginning alone moves the event and keeps its length
            end = services.parse_local(start, "start") + (event.end_at - event.start_at)
        data = services.change_fields(event, title=title, start=start, end=end, place_name=location,
                                      place_address=address, room=room, description=description)
        result = services.update_event(event, data, start=not draft)
    click.echo(f"Geändert: {', '.join(result.changed) or 'nichts, was im Kalender steht'}.")
    click.echo(f"{anzahl(result.rewritten, 'wartende Nachricht', 'wartende Nachrichten')} neu erstellt, "
               f"{result.withdrawn} zurückgezogen, {anzahl(result.updates, 'Aktualisierung', 'Aktualisierungen')} "
               f"eingereiht{_sent_or_draft(result.mailing_id, draft)}.")


@events.command("cancel")
@click.argument("event_id", type=int)
@click.option("--reason", default="", help="Grund der Absage (steht in der Absage und auf der Antwortseite).")
@click.option("--entwurf", "draft", is_flag=True, help=_DRAFT_HELP)
def cancel(event_id: int, reason: str, draft: bool) -> None:
    """Eine Veranstaltung absagen: Wartendes wird zurückgezogen; wer sie im Kalender haben kann, erhält METHOD:CANCEL."""
    event = _event(event_id)
    with cli_transaction():
        result = services.cancel_event(event, reason, start=not draft)
    click.echo(f"Abgesagt. {anzahl(result.withdrawn, 'wartende Nachricht', 'wartende Nachrichten')} zurückgezogen, "
               f"{anzahl(result.recipients, 'Absage', 'Absagen')} eingereiht{_sent_or_draft(result.mailing_id, draft)}.")


@events.command("remind")
@click.argument("event_id", type=int)
@click.option("--include-accepted", is_flag=True, help="Auch Personen erinnern, die zugesagt haben.")
@click.option("--force", is_flag=True, help="Auch wenn vor kurzem (REMINDER_WARN_HOURS) schon erinnert wurde.")
@click.option("--entwurf", "draft", is_flag=True, help=_DRAFT_HELP)
def remind(event_id: int, include_accepted: bool, force: bool, draft: bool) -> None:
    """Erinnerungen an alle, deren Einladung versendet ist und die noch nicht geantwortet haben; nennt die Zahl."""
    event = _event(event_id)
    with cli_transaction(hints={"repeat": " (mit --force trotzdem erinnern)"}):
        result = services.send_reminders(event, include_accepted, start=not draft, repeat_confirmed=force)
    skipped = f", {result.skipped} übersprungen (Grund im Postausgang)" if result.skipped else ""
    click.echo(f"{anzahl(result.reminded, 'Erinnerung', 'Erinnerungen')} eingereiht{skipped}"
               f"{_sent_or_draft(result.mailing_id, draft)}.")


@events.command("export")
@click.argument("event_id", type=int)
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
def export(event_id: int, path: str) -> None:
    """Teilnehmerliste als .xlsx oder .csv (nach Dateiendung) schreiben."""
    event = _event(event_id)
    fmt = Path(path).suffix.lower().lstrip(".")
    rows = services.participant_rows(event)  # invitations and walk-ins
    try:
        data = services.export_participants(event, fmt, rows)
    except KiPostError as error:
        raise click.ClickException(str(error)) from None
    Path(path).write_bytes(data)
    click.echo(f"{anzahl(len(rows), 'Eintrag', 'Einträge')} nach {path} geschrieben.")


@events.command("checkin")
@click.argument("event_id", type=int)
@click.argument("email")
@click.option("--undo", is_flag=True, help="Das Abhaken zurücknehmen.")
@click.option("--begleitpersonen", type=int, default=None,
              help="Anwesende Begleitpersonen (ohne Angabe: so viele wie angemeldet).")
def checkin(event_id: int, email: str, undo: bool, begleitpersonen: int | None) -> None:
    """Eine eingeladene Person beim Einlass als anwesend abhaken (oder mit --undo zurücknehmen)."""
    from . import attendance

    event = _event(event_id)
    with cli_transaction():
        invitation = attendance.find_invitation(event, email)
        if undo:
            row = attendance.attendance_for(invitation)
            if row is None or not row.present:
                raise KiPostError(f"{invitation.name or invitation.email} ist nicht als anwesend erfasst.")
            attendance.undo(row)
        else:
            row = attendance.check_in(invitation, begleitpersonen)
    name = invitation.name or invitation.email
    if undo:
        click.echo(f"Zurückgenommen: {name} ist nicht mehr als anwesend erfasst.")
    else:
        companions = f", mit {anzahl(row.companions_present, 'Begleitperson', 'Begleitpersonen')}" if row.companions_present else ""
        click.echo(f"{name} ist anwesend{companions}.")


def _ingest(path: str) -> None:
    with cli_transaction():
        result = services.ingest_path(path)
    for line in result.lines:
        click.echo(line)
    click.echo(result.summary())


def _poll() -> None:
    try:
        result = services.poll_imap(commit=db.session.commit, on_mail=click.echo)
    except KiPostError as error:
        raise click.ClickException(str(error)) from None
    click.echo(result.summary())


@click.group("mailbox")
def mailbox() -> None:
    """Das Funktionspostfach lesen: Kalenderantworten, Unzustellbarkeits- und Verzögerungsnachrichten,
    automatische Antworten."""


@mailbox.command("ingest")
@click.argument("path", type=click.Path(exists=True))
def mailbox_ingest(path: str) -> None:
    """Eine .eml-Datei, ein mbox-Postfach, einen Maildir-Ordner oder einen Ordner mit .eml-Dateien einlesen;
    nennt je Mail, was sie war und was sich geändert hat."""
    _ingest(path)


@mailbox.command("poll")
def mailbox_poll() -> None:
    """Ungelesene Mails des Funktionspostfachs per IMAP lesen (Einstellungen IMAP_*); nennt je Mail, was sie
    war und was sich geändert hat."""
    _poll()


@click.group("rsvp")
def rsvp() -> None:
    """Antworten aus Kalenderprogrammen einlesen (frühere Namen von „mailbox ingest“ und „mailbox poll“)."""


@rsvp.command("ingest")
@click.argument("path", type=click.Path(exists=True))
def ingest(path: str) -> None:
    """Wie „mailbox ingest“: eine .eml-Datei, ein mbox-Postfach, einen Maildir-Ordner oder einen Ordner mit .eml-Dateien einlesen."""
    _ingest(path)


@rsvp.command("poll-imap")
def poll_imap() -> None:
    """Wie „mailbox poll“: ungelesene Mails des Funktionspostfachs per IMAP lesen (Einstellungen IMAP_*)."""
    _poll()


@rsvp.command("poll")
def poll() -> None:
    """Wie „mailbox poll“ (kurzer Name)."""
    _poll()


@events.command("copy")
@click.argument("event_id", type=int)
@click.option("--start", required=True, help="Beginn der Kopie in deutscher Zeit, z. B. 2018-02-08T11:00.")
@click.option("--end", required=True, help="Ende der Kopie in deutscher Zeit, z. B. 2018-02-08T13:00.")
@click.option("--title", default=None, help="Titel der Kopie (ohne Angabe: der bisherige, mit neuer Jahreszahl).")
def copy(event_id: int, start: str, end: str, title: str | None) -> None:
    """Eine Veranstaltung mit allen Einstellungen und Fragen, ohne Einladungen, als Entwurf kopieren
    (die Antwortfrist verschiebt sich wie der Beginn); die letzte Zeile ist die Nummer der Kopie."""
    from .copying import copy_event

    source = _event(event_id)
    with cli_transaction():
        target = copy_event(source, start, end, title)
    click.echo(f"Veranstaltung „{target.title}“ als Entwurf kopiert (UID {target.uid}).")
    click.echo(str(target.id))


@events.command("auto-remind")
@click.argument("event_id", type=int)
@click.option("--offene", type=int, default=None, help="Tage vor der Antwortfrist an alle ohne Antwort (0 = aus).")
@click.option("--teilnehmende", type=int, default=None, help="Tage vor Beginn an alle mit Zusage (0 = aus).")
def auto_remind(event_id: int, offene: int | None, teilnehmende: int | None) -> None:
    """Automatische Erinnerungen einstellen (ohne Angabe bleibt die Einstellung) und ihren Stand zeigen."""
    from ..formatting import datum_zeit
    from .automation import plans, set_automatic_reminders

    event = _event(event_id)
    if offene is not None or teilnehmende is not None:
        keep = {"offene": event.remind_open_days, "teilnehmende": event.remind_participants_days}
        chosen = {name: (keep[name] if value is None else (value or None))
                  for name, value in (("offene", offene), ("teilnehmende", teilnehmende))}
        with cli_transaction():
            set_automatic_reminders(event, chosen["offene"], chosen["teilnehmende"])
    for plan in plans(event):
        when = f", fällig {datum_zeit(plan.due_at)}" if plan.due_at else ""
        sent = f", versendet an {plan.run.recipients}" if plan.run else ""
        click.echo(f"{plan.kind}\t{plan.days or 'aus'}\t{plan.status}{when}{sent}")


events.add_command(badge_cli.badges)
commands: list[click.Command] = [events, rsvp, mailbox]

