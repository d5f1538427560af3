"""`flask --app app outbox …`: run the worker, show and steer mailings."""
from __future__ import annotations

import signal
import sys

import click
from flask import current_app

from ..errors import KiPostError
from ..extensions import db
from ..transaction import cli_transaction
from . import services, steering
from .models import MailingState, MessageState


@click.group("outbox")
def outbox() -> None:
    """Postausgang: senden, Stand anzeigen, Aussendungen steuern."""


@outbox.command("work")
@click.option("--once", is_flag=True, help="Senden, bis nichts mehr fällig ist, dann mit Zusammenfassung beenden.")
@click.option("--worker-id", default=None, help="Kennung dieses Prozesses (Standard: Rechner:PID:Zufall).")
def work(once: bool, worker_id: str | None) -> None:
    """Fällige Nachrichten senden (ohne --once: bis zum Beenden mit Strg+C oder SIGTERM)."""
    from .worker import Worker, due_count

    worker = Worker(current_app._get_current_object(), worker_id=worker_id)
    # SIGTERM ends the loop after the message in flight, so nothing is left in doubt.
    signal.signal(signal.SIGTERM, lambda *_: worker.stop_event.set())
    transport = "SMTP " + current_app.config["MAIL_SERVER"] if worker.transport.kind == "smtp" else \
        f"Dateiablage {current_app.config['OUTBOX_DIR']} (nicht versendet)"
    click.echo(f"Worker {worker.id} sendet über {transport}.", err=True)
    if once:
        total = due_count()
        db.session.commit()
        with click.progressbar(length=total, label="Senden", file=sys.stderr,
                               show_pos=True) as bar:
            summary = worker.run(once=True, on_message=lambda _outcome: bar.update(1))
    else:
        try:
            summary = worker.run(once=False)
        except KeyboardInterrupt:
            worker.stop_event.set()
            return
    click.echo(summary.line())


def _mailing(mailing_id: int):
    try:
        return services.get_mailing(mailing_id)
    except KiPostError as error:
        raise click.ClickException(str(error)) from None


@outbox.command("status")
@click.argument("mailing_id", type=int, required=False)
def status(mailing_id: int | None) -> None:
    """Eine Zeile je Zustand mit Anzahl (alle Aussendungen oder eine)."""
    if mailing_id is not None:
        mailing = _mailing(mailing_id)
        click.echo(f"Aussendung {mailing.id}: {mailing.title} ({mailing.state_label})")
        if mailing.pause_reason:
            click.echo(f"Grund: {mailing.pause_reason}")
    counts = services.mailing_counts(mailing_id)
    for state, label in MessageState.labels().items():
        click.echo(f"{label}: {counts[state]}")


def _control(name: str, help_text: str, action, done: str):
    @outbox.command(name, help=help_text)
    @click.argument("mailing_id", type=int)
    def command(mailing_id: int) -> None:
        mailing = _mailing(mailing_id)
        with cli_transaction():
            result = action(mailing)
        click.echo(done.format(id=mailing.id, n=result))

    return command


_control("start", "Einen Entwurf zum Senden freigeben.", steering.release, "Aussendung {id} wird gesendet.")
_control("pause", "Eine laufende Aussendung anhalten.", lambda m: steering.pause_mailing(m, "von Hand pausiert (Kommandozeile)"),
         "Aussendung {id} pausiert.")
_control("resume", "Eine pausierte Aussendung fortsetzen.", steering.resume_mailing, "Aussendung {id} wird fortgesetzt.")
_control("cancel", "Eine Aussendung abbrechen; wartende Nachrichten werden nicht mehr gesendet.", steering.cancel_mailing,
         "Aussendung {id} abgebrochen ({n} Nachrichten nicht gesendet).")
_control("retry-failed", "Fehlgeschlagene Nachrichten einer Aussendung erneut senden.", steering.retry_failed,
         "{n} fehlgeschlagene Nachrichten der Aussendung {id} werden erneut gesendet.")


@outbox.command("unklar")
@click.argument("mailing_id", type=int, required=False)
@click.option("--erneut-senden", "resend_all", is_flag=True, help="Alle unklaren Nachrichten der Aussendung erneut senden.")
@click.option("--als-gesendet", "mark_all", is_flag=True, help="Alle unklaren Nachrichten der Aussendung als gesendet markieren.")
@click.option("--ja", "confirmed", is_flag=True, help="Ohne Rückfrage (für Skripte).")
def list_unklar(mailing_id: int | None, resend_all: bool, mark_all: bool, confirmed: bool) -> None:
    """Nachrichten im Zweifel (unklar) auflisten: Nummer, Empfänger, Grund; mit --erneut-senden oder
    --als-gesendet für alle unklaren einer Aussendung entscheiden (nach Rückfrage, protokolliert)."""
    messages = services.messages_in_state(MessageState.UNKLAR, mailing_id)
    for message in messages:
        click.echo(f"{message.id}\t{message.to_email}\t{message.server_reply}")
    if not (resend_all or mark_all):
        return
    if resend_all and mark_all:
        raise click.UsageError("Bitte entweder --erneut-senden oder --als-gesendet angeben.")
    if mailing_id is None:
        raise click.UsageError("Bitte die Nummer der Aussendung angeben (outbox unklar NR …).")
    mailing = _mailing(mailing_id)
    action, question = ((steering.resend_unklar, "erneut senden") if resend_all
                        else (steering.mark_unklar_sent, "als gesendet markieren"))
    if messages and not confirmed:
        click.confirm(f"Alle {len(messages)} unklaren Nachrichten der Aussendung {mailing.id} {question}?", abort=True)
    with cli_transaction():
        # The count confirmed above: if more became unklar meanwhile, nothing is decided unseen.
        count = action(mailing, len(messages))
    done = "werden erneut gesendet" if resend_all else "als gesendet markiert"
    click.echo(f"{count} unklare Nachrichten der Aussendung {mailing.id} {done}."
               + (" Die Aussendung ist pausiert: fortsetzen mit „outbox resume“." if resend_all and mailing.state == MailingState.PAUSIERT else ""))


@outbox.command("resend")
@click.argument("message_id", type=int)
def resend(message_id: int) -> None:
    """Eine unklare oder fehlgeschlagene Nachricht erneut senden."""
    with cli_transaction():
        message = services.get_message(message_id)
        steering.resend_message(message)
    click.echo(f"Nachricht {message_id} wird erneut gesendet.")


@outbox.command("mark-sent")
@click.argument("message_id", type=int)
def mark_sent(message_id: int) -> None:
    """Eine unklare Nachricht als gesendet markieren (sie ist angekommen)."""
    with cli_transaction():
        message = services.get_message(message_id)
        steering.mark_message_sent(message)
    click.echo(f"Nachricht {message_id} als gesendet markiert.")


commands: list[click.Command] = [outbox]
