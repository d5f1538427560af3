"""Postausgang pages: mailings, progress, preview, steering, .eml viewer. Nothing here sends mail."""
from __future__ import annotations

import re

from flask import Blueprint, Response, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..auth.access import requires_role
from ..blobs import load_blob
from ..extensions import db
from ..transaction import transaction
from . import services, steering
from .mime import parse_mime
from .models import Mailing, MailingState, MessageState, OutboxAttachment, OutboxMessage
from .returns import bounces_of

bp = Blueprint("outbox", __name__, url_prefix="/postausgang")
PER_PAGE = 100
# Personal RSVP links (events.services.RSVP_PATH + token). The outbox does not import the events
# package; tests/outbox/test_views.py checks the pattern against a real invitation. A calendar
# part is folded every 75 octets (RFC 5545, 3.1), so a line break plus space may split a link.
_FOLD = r"(?:\r?\n[ \t])?"
RSVP_TOKEN = re.compile(_FOLD.join(map(re.escape, "/antwort/")) + r"(?:[A-Za-z0-9_-]|\r?\n[ \t])+")


@bp.get("/")
def index():
    page = db.paginate(select(Mailing).order_by(Mailing.id.desc()), per_page=50)
    counts = services.counts_by_mailing([m.id for m in page.items])
    return render_template("outbox/index.html", page=page, counts=counts,
                           file_transport=not current_app.config["MAIL_SERVER"],
                           eml_count=len(services.eml_files()) if not current_app.config["MAIL_SERVER"] else 0)


@bp.get("/<int:mailing_id>")
def mailing(mailing_id: int):
    mailing = services.get_mailing(mailing_id)
    state = request.args.get("zustand", "")
    query = select(OutboxMessage).where(OutboxMessage.mailing_id == mailing.id).order_by(OutboxMessage.id)
    if MessageState.parse(state):
        query = query.where(OutboxMessage.state == state)
    page = db.paginate(query, per_page=PER_PAGE)
    return render_template("outbox/mailing.html", mailing=mailing, progress=services.mailing_progress(mailing),
                           page=page, state=state, states=MessageState.labels(), bounces=bounces_of([m.id for m in page.items]),
                           file_transport=not current_app.config["MAIL_SERVER"])


@bp.get("/<int:mailing_id>/fortschritt")
def progress(mailing_id: int):
    return jsonify(services.mailing_progress(services.get_mailing(mailing_id)))


def _steer(mailing_id: int, action, done: str):
    mailing = services.get_mailing(mailing_id)
    with transaction() as outcome:
        result = action(mailing)
    if outcome.ok:
        flash(done.format(n=result), "success")
    return redirect(url_for("outbox.mailing", mailing_id=mailing.id))


@bp.post("/<int:mailing_id>/senden")
def start(mailing_id: int):
    return _steer(mailing_id, steering.release, "Die Aussendung wird gesendet.")


@bp.post("/<int:mailing_id>/pausieren")
def pause(mailing_id: int):
    return _steer(mailing_id, lambda m: steering.pause_mailing(m, f"von Hand pausiert ({current_user.name})"),
                  "Die Aussendung ist pausiert.")


@bp.post("/<int:mailing_id>/fortsetzen")
def resume(mailing_id: int):
    return _steer(mailing_id, steering.resume_mailing, "Die Aussendung wird fortgesetzt.")


@bp.post("/<int:mailing_id>/abbrechen")
def cancel(mailing_id: int):
    return _steer(mailing_id, steering.cancel_mailing,
                  "Die Aussendung ist abgebrochen; {n} wartende Nachrichten werden nicht gesendet.")


@bp.post("/<int:mailing_id>/fehlgeschlagene-erneut")
def retry(mailing_id: int):
    return _steer(mailing_id, steering.retry_failed, "{n} fehlgeschlagene Nachrichten werden erneut gesendet.")


# A decision for every message in doubt of a mailing at once: (service, question, done).
UNKLAR_DECISIONS = {
    "erneut-senden": (steering.resend_unklar, "erneut senden", "{n} unklare Nachrichten werden erneut gesendet."),
    "als-gesendet": (steering.mark_unklar_sent, "als gesendet markieren", "{n} unklare Nachrichten sind als gesendet markiert."),
}


@bp.get("/<int:mailing_id>/unklar/<decision>")
@requires_role("sachbearbeitung")
def unklar_confirm(mailing_id: int, decision: str):
    """The confirmation page: what will happen to how many messages, and to whom."""
    if decision not in UNKLAR_DECISIONS:
        abort(404)
    mailing = services.get_mailing(mailing_id)
    count = steering.count_unklar(mailing)
    if not count:
        flash("Die Aussendung hat keine unklaren Nachrichten.", "info")
        return redirect(url_for("outbox.mailing", mailing_id=mailing.id))
    shown = services.messages_in_state(MessageState.UNKLAR, mailing.id, limit=200)
    return render_template("outbox/unklar.html", mailing=mailing, decision=decision, count=count, shown=shown,
                           question=UNKLAR_DECISIONS[decision][1])


@bp.post("/<int:mailing_id>/unklar/<decision>")
def unklar_decide(mailing_id: int, decision: str):
    if decision not in UNKLAR_DECISIONS:
        abort(404)
    action, _, done = UNKLAR_DECISIONS[decision]
    mailing = services.get_mailing(mailing_id)
    expected = request.form.get("anzahl", type=int)  # the count the confirmation page showed
    if request.form.get("bestaetigt") != "ja" or expected is None:
        flash("Bitte bestätigen Sie die Entscheidung auf der Bestätigungsseite.", "error")
        return redirect(url_for("outbox.unklar_confirm", mailing_id=mailing.id, decision=decision))
    with transaction() as outcome:
        count = action(mailing, expected)
    if not outcome.ok:
        return redirect(url_for("outbox.unklar_confirm", mailing_id=mailing.id, decision=decision))
    text = done.format(n=count)
    if decision == "erneut-senden" and mailing.state == MailingState.PAUSIERT:
        text += " Die Aussendung ist pausiert: Sie gehen hinaus, sobald Sie sie fortsetzen."
    flash(text, "success")
    return redirect(url_for("outbox.mailing", mailing_id=mailing.id))


@bp.post("/<int:mailing_id>/testversand")
def test_send(mailing_id: int):
    mailing = services.get_mailing(mailing_id)
    with transaction() as outcome:
        test = steering.send_test(mailing, current_user.email, current_user.name)
    if outcome.ok:
        flash(f"Eine Testnachricht an {current_user.email} ist im Postausgang (Aussendung {test.id}).", "success")
    return redirect(url_for("outbox.mailing", mailing_id=mailing.id))


def shown_to_viewer(text: str | None) -> str | None:
    """Mail content as the signed-in user may see it.

    Below ``sachbearbeitung`` the token of each personal RSVP link is masked: with it a read-only
    user could answer an invitation in the recipient's name.
    """
    if text is None or current_user.has_role("sachbearbeitung"):
        return text
    return RSVP_TOKEN.sub("/antwort/…", text)


@bp.get("/nachricht/<int:message_id>")
def message(message_id: int):
    message = services.get_message(message_id)
    raw = services.build_mime(message)
    return render_template("outbox/message.html", message=message, mailing=message.mailing, headers=_headers(raw),
                           bounces=bounces_of([message.id]).get(message.id, []),
                           text=shown_to_viewer(message.text), html=shown_to_viewer(message.html),
                           calendar_text=shown_to_viewer(_calendar_text(message)))


def _headers(raw: bytes) -> list[tuple[str, str]]:
    parsed = parse_mime(raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n")
    return [(name, str(value)) for name, value in parsed.items()]


def _calendar_text(message: OutboxMessage) -> str | None:
    if message.calendar_data is None:
        return None
    return message.calendar_data.decode("utf-8", "replace")


@bp.get("/nachricht/<int:message_id>/html")
def message_html(message_id: int):
    message = services.get_message(message_id)
    if not message.html:
        abort(404)
    response = Response(shown_to_viewer(message.html), mimetype="text/html")
    # Shown in a sandboxed frame: no scripts, no requests, no forms, whatever the mail contains.
    response.headers["Content-Security-Policy"] = (
        "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'")
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.get("/nachricht/<int:message_id>.eml")
@requires_role("sachbearbeitung")  # the raw message holds RSVP tokens, encoded beyond masking
def message_eml(message_id: int):
    message = services.get_message(message_id)
    return Response(services.build_mime(message), mimetype="message/rfc822",
                    headers={"Content-Disposition": f'attachment; filename="nachricht-{message.id}.eml"'})


@bp.get("/nachricht/<int:message_id>/anhang/<int:attachment_id>")
def attachment(message_id: int, attachment_id: int):
    found = db.session.get(OutboxAttachment, attachment_id)
    if found is None or found.message_id != message_id:
        abort(404)
    from werkzeug.http import dump_options_header  # RFC 5987 encoding of umlauts in the file name

    disposition = dump_options_header("attachment", {"filename*": f"UTF-8''{_quote(found.filename)}",
                                                     "filename": found.filename.encode("ascii", "replace").decode().replace("?", "_")})
    return Response(load_blob(found.blob_sha256), mimetype=found.mimetype, headers={"Content-Disposition": disposition})


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


@bp.post("/nachricht/<int:message_id>/erneut-senden")
def resend(message_id: int):
    return _decide(message_id, steering.resend_message, "Die Nachricht an {to} wird erneut gesendet.")


@bp.post("/nachricht/<int:message_id>/als-gesendet")
def mark_sent(message_id: int):
    return _decide(message_id, steering.mark_message_sent, "Die Nachricht an {to} ist als gesendet markiert.")


def _decide(message_id: int, action, done: str):
    message = services.get_message(message_id)
    with transaction() as outcome:
        action(message)
    if outcome.ok:
        flash(done.format(to=message.to_email), "success")
    return redirect(url_for("outbox.mailing", mailing_id=message.mailing_id, zustand=request.form.get("zustand", "")))


@bp.get("/dateien")
def files():
    return render_template("outbox/files.html", files=services.eml_files(),
                           file_transport=not current_app.config["MAIL_SERVER"])


@bp.get("/dateien/<name>")
def file(name: str):
    raw = services.read_eml(name)
    if request.args.get("herunterladen"):
        if not current_user.has_role("sachbearbeitung"):
            abort(403)  # like message_eml: the raw file holds RSVP tokens
        return Response(raw, mimetype="message/rfc822", headers={"Content-Disposition": f'attachment; filename="{name}"'})
    parsed = parse_mime(raw)
    body = parsed.get_body(preferencelist=("plain",))
    parts = [(part.get_content_type(), part.get_filename() or "", len(part.get_payload(decode=True) or b""))
             for part in parsed.walk() if not part.is_multipart()]
    return render_template("outbox/file.html", name=name, headers=_headers(raw),
                           text=shown_to_viewer(body.get_content() if body is not None else ""), parts=parts)
