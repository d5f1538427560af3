"""flask --app app letters …: render circulars and list templates from the shell."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import KiPostError
from ..extensions import db
from ..transaction import cli_transaction
from . import label_cli


@click.group("letters", help="Rundschreiben: Vorlagen und Briefe.")
def letters() -> None:
    pass


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"„{pair}“: bitte FELD=WERT angeben.", param_hint="--set")
        fields[key.strip()] = value
    return fields


@letters.command("render", help="Briefe für einen Verteiler (oder alle aktiven Kontakte) erzeugen. Exit-Status 1: für "
                                 "einige Empfänger ließ sich kein Brief erstellen (Gründe auf stderr), die übrigen sind geschrieben.")
@click.option("--template", "template_name", required=True, help="Name der Vorlage (siehe „letters templates“).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Zieldatei (.zip, .docx oder .pdf).")
@click.option("--list", "list_name", default=None, help="Verteiler; ohne Angabe alle aktiven Kontakte.")
@click.option("--merged", is_flag=True, help="Ein Dokument für den Druck statt einer ZIP-Datei.")
@click.option("--pdf", "as_pdf", is_flag=True, help="PDF statt DOCX (braucht LibreOffice).")
@click.option("--set", "sets", multiple=True, metavar="FELD=WERT", help="Brieffeld setzen, z. B. --set betreff=… (mehrfach).")
@click.option("--leere-felder", "confirm_empty", is_flag=True,
              help="Zusatzfelder ohne Wert und unbekannte Platzhalter bleiben leer (sonst Abbruch mit Liste).")
def render_command(template_name: str, out_path: Path, list_name: str | None, merged: bool, as_pdf: bool, sets: tuple[str, ...],
                   confirm_empty: bool) -> None:
    from ..recipients.services import resolve_recipients, verteiler_by_name
    from . import services

    fields = _parse_sets(sets)
    existed = out_path.exists()
    try:
        version = services.template_by_name(template_name).latest
        if list_name:
            contacts = resolve_recipients(verteiler_id=verteiler_by_name(list_name).id)
        else:
            contacts = resolve_recipients(filters={})
        all_fields = {**services.default_fields(), **fields}
        services.require_complete(version, all_fields, confirm_empty=confirm_empty, how_to_fix=services.HOW_TO_FIX_CLI)
        output = ("merged" if merged else "zip") + ("_pdf" if as_pdf else "")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        with out_path.open("wb") as target, click.progressbar(length=len(contacts), label="Briefe", file=sys.stderr) as bar:
            result = services.produce(version, contacts, all_fields, output, target, user="cli",
                                      progress=lambda _n: bar.update(1))
        db.session.commit()
    except KiPostError as exc:
        db.session.rollback()
        if out_path.exists() and not existed:
            out_path.unlink()
        raise click.ClickException(str(exc)) from None
    click.echo(f"{result.count} Briefe geschrieben: {out_path}")
    for problem in result.problems:
        click.echo(f"Nicht erstellt – {problem}", err=True)
    if result.problems:
        click.echo(f"{len(result.problems)} Briefe nicht erstellt (siehe oben; auch im Archiv unter Vorgang {result.run.id}).", err=True)
        sys.exit(1)


@letters.command("templates", help="Namen der Briefvorlagen auflisten.")
def templates_command() -> None:
    from . import services

    services.ensure_shipped_templates()
    templates = services.list_templates()
    db.session.commit()
    for template in templates:
        latest = template.latest
        click.echo(f"{template.name}\tVersion {latest.number if latest else '-'}\t{template.description}")


letters.add_command(label_cli.labels)
commands: list[click.Command] = [letters]


@letters.command("mail", help="Rundschreiben als Anhang mit Begleitmail in den Postausgang stellen; "
                            "die Nummer der Aussendung steht allein in der letzten Zeile. Exit-Status 1: "
                            "einige Empfänger wurden übersprungen (Gründe auf stderr), die übrigen sind eingereiht.")
@click.option("--template", "template_name", required=True, help="Name der Briefvorlage (siehe „letters templates“).")
@click.option("--list", "list_name", default=None, help="Verteiler; ohne Angabe alle aktiven Kontakte.")
@click.option("--format", "fmt", type=click.Choice(["docx", "pdf"]), default="docx", show_default=True, help="Format des Anhangs.")
@click.option("--subject", default="", help="Betreff des Rundschreibens (Brieffeld „betreff“ und Betreff der Mail).")
@click.option("--set", "sets", multiple=True, metavar="FELD=WERT", help="Brief- oder Zusatzfeld setzen, z. B. --set frist=31.01. (mehrfach).")
@click.option("--leere-felder", "confirm_empty", is_flag=True,
              help="Zusatzfelder ohne Wert und unbekannte Platzhalter bleiben leer (sonst Abbruch mit Liste).")
@click.option("--entwurf", "draft", is_flag=True, help="Nur als Entwurf anlegen (Vorschau und Testversand in der Oberfläche).")
def mail_command(template_name: str, list_name: str | None, fmt: str, subject: str, sets: tuple[str, ...],
                 confirm_empty: bool, draft: bool) -> None:
    from .circulars import mail_circular, skipped_recipients

    fields = _parse_sets(sets)
    with cli_transaction(), click.progressbar(length=0, label="Rundschreiben", file=sys.stderr) as bar:
        mailing = mail_circular(template_name, list_name=list_name, fmt=fmt, subject=subject, fields=fields,
                                start=not draft, confirm_empty=confirm_empty, progress=lambda n: bar.update(n))
    skipped = skipped_recipients(mailing)
    queued = len(mailing.messages) - len(skipped)
    click.echo(f"{queued} Nachrichten eingereiht ({'Entwurf' if draft else 'wird gesendet'}), {len(skipped)} übersprungen.", err=True)
    for message in skipped:
        click.echo(f"Übersprungen – {message.to_name or message.to_email} <{message.to_email}>: {message.server_reply}", err=True)
    click.echo(mailing.id)
    if skipped:
        sys.exit(1)


# Belongs to the "recipients" group on the command line; lives here because the mailing signs with the
# sender's lines the letters keep (the Verteiler sits below the outbox and the letters).
from ..recipients.cli import recipients as recipients_group  # noqa: E402


@recipients_group.command("confirm-mailing", help="Die jährliche Bitte „Bitte prüfen Sie Ihre Angaben“ an alle aktiven "
                                                   "Ansprechpersonen (oder einen Verteiler) in den Postausgang stellen; "
                                                   "die Nummer der Aussendung steht allein in der letzten Zeile.")
@click.option("--list", "list_name", default=None, help="Verteiler; ohne Angabe alle aktiven Kontakte.")
@click.option("--entwurf", "draft", is_flag=True, help="Nur als Entwurf anlegen (Vorschau und Testversand in der Oberfläche).")
def confirm_mailing_command(list_name: str | None, draft: bool) -> None:
    from .confirmation import queue_confirmation_mailing

    with cli_transaction():
        mailing = queue_confirmation_mailing(list_name, start=not draft)
    queued = sum(1 for message in mailing.messages if message.state != "uebersprungen")
    click.echo(f"{queued} Nachrichten eingereiht ({'Entwurf' if draft else 'wird gesendet'}).", err=True)
    click.echo(mailing.id)

