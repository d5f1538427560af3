"""Einlass (check-in on the day) and Nachbereitung (follow-up mails) pages, on the events blueprint.

Reading the check-in list needs ``lesen``; ticking off, undoing and walk-ins need ``sachbearbeitung``
(the house rule for POST). The QR code of a confirmation opens ``/einlass/<code>``: a staff page like
any other, so an anonymous visitor gets the login page.
"""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import HiddenField, IntegerField, RadioField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ..auth.access import requires_role
from ..formatting import anzahl
from ..transaction import get_or_404, transaction
from . import attendance as checkin
from . import services
from .followup import Audience, followup_recipients, prepare_followup
from .models import EventState, Invitation
from .blueprint import bp

COMPANIONS = NumberRange(0, checkin.MAX_PRESENT_COMPANIONS, f"0 bis {checkin.MAX_PRESENT_COMPANIONS}.")


class MarkForm(FlaskForm):
    q = HiddenField()
    companions_present = IntegerField("Begleitpersonen anwesend", validators=[Optional(), COMPANIONS])


class WalkInForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired("Bitte den Namen angeben."), Length(max=300)])
    organisation = StringField("Kommune oder Organisation", validators=[Optional(), Length(max=200)])
    email = StringField("E-Mail (freiwillig)", validators=[Optional(), Length(max=254)])
    companions_present = IntegerField("Begleitpersonen anwesend", default=0, validators=[Optional(), COMPANIONS])


class FollowupForm(FlaskForm):
    audience = RadioField("Empfängerinnen und Empfänger", choices=Audience.choices(),
                          validators=[DataRequired("Bitte wählen Sie, an wen die Nachricht gehen soll.")])
    subject = StringField("Betreff", validators=[DataRequired("Bitte einen Betreff angeben."), Length(max=200)])
    text = TextAreaField("Text", validators=[DataRequired("Bitte einen Text angeben."), Length(max=20000)],
                         description="Absätze durch eine Leerzeile trennen. Anrede und Unterschrift kommen automatisch dazu.")
    attachments = MultipleFileField("Anhänge (PDF oder Word, freiwillig)")


ONLY_CONFIRMED = "zusagen"  # ?nur=zusagen: the „nur Zusagen“ view


def _back(event_id: int, key: str = "", keep_filter: bool = True):
    """Back to the list as it was (search and „nur Zusagen“ kept), at the person's line, where the message
    about them is shown (?zuletzt=)."""
    q = (request.form.get("q") or "").strip()[:100] if keep_filter else ""
    nur = ONLY_CONFIRMED if request.form.get("nur") == ONLY_CONFIRMED else None
    return redirect(url_for("events.checkin", event_id=event_id, q=q or None, nur=nur, zuletzt=key or None,
                            _anchor=key or None))


def _render_list(event, q: str = "", person: str = "", only: bool = False, last: str = "",
                 walk_in_form: WalkInForm | None = None, can_edit: bool = False):
    found = checkin.entries(event, q)
    if person:
        found = [entry for entry in found if entry.key == person]
    shown = {entry.key for entry in (checkin.only_confirmed(found) if only else found)}
    return render_template("events/checkin.html", event=event, entries=found, shown=shown, q=q, person=person,
                           only=only, hidden_count=len(found) - len(shown),
                           unconfirmed_count=len(found) - len(checkin.only_confirmed(found)),
                           last=last if last in shown else "", counts=checkin.counts(event),
                           ended=checkin.ended(event), can_edit=can_edit, mark_form=MarkForm(),
                           walk_in_form=walk_in_form or WalkInForm())


@bp.route("/veranstaltungen/<int:event_id>/einlass", endpoint="checkin")
def checkin_page(event_id: int):
    event = services.get_event(event_id)
    return _render_list(event, request.args.get("q", "").strip()[:100], request.args.get("person", ""),
                        request.args.get("nur") == ONLY_CONFIRMED, request.args.get("zuletzt", ""),
                        can_edit=current_user.has_role("sachbearbeitung") and event.state == EventState.VEROEFFENTLICHT)


@bp.route("/einlass/<token>")
def checkin_code(token: str):
    """Where the QR code of a confirmation leads: that person's line of the check-in list."""
    row = checkin.by_token(token)
    return redirect(url_for("events.checkin", event_id=row.event_id, person=f"einladung-{row.invitation_id}",
                            _anchor=f"einladung-{row.invitation_id}"))


def _invitation(event_id: int, invitation_id: int) -> Invitation:
    invitation = get_or_404(Invitation, invitation_id, "Einladung")
    if invitation.event_id != event_id:
        abort(404)
    return invitation


@bp.route("/veranstaltungen/<int:event_id>/einlass/einladung/<int:invitation_id>", methods=["POST"])
def checkin_invitation(event_id: int, invitation_id: int):
    invitation = _invitation(event_id, invitation_id)
    form = MarkForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        flash(f"Bitte eine Zahl von 0 bis {checkin.MAX_PRESENT_COMPANIONS} Begleitpersonen angeben.", "error")
        return _back(event_id, f"einladung-{invitation_id}")
    with transaction() as done:
        row = checkin.check_in(invitation, form.companions_present.data)
    if done.ok:
        flash(f"{invitation.name or invitation.email} ist anwesend"
              f"{', mit ' + anzahl(row.companions_present, 'Begleitperson', 'Begleitpersonen') if row.companions_present else ''}.",
              "success")
    return _back(event_id, f"einladung-{invitation_id}")


@bp.route("/veranstaltungen/<int:event_id>/einlass/einladung/<int:invitation_id>/zuruecknehmen", methods=["POST"])
def checkin_invitation_undo(event_id: int, invitation_id: int):
    invitation = _invitation(event_id, invitation_id)
    if not MarkForm().validate_on_submit():
        abort(400)
    row = checkin.attendance_for(invitation)
    if row is None:
        flash("Diese Person ist nicht als anwesend erfasst.", "error")
        return _back(event_id, f"einladung-{invitation_id}")
    with transaction() as done:
        checkin.undo(row)
    if done.ok:
        flash(f"Zurückgenommen: {invitation.name or invitation.email} ist nicht mehr als anwesend erfasst.", "success")
    return _back(event_id, f"einladung-{invitation_id}")


@bp.route("/veranstaltungen/<int:event_id>/einlass/vor-ort", methods=["POST"])
def checkin_walk_in(event_id: int):
    event = services.get_event(event_id)
    form = WalkInForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return _walk_in_page(event, form)
    with transaction(form) as done:
        row = checkin.add_walk_in(event, form.name.data, form.organisation.data or "", form.email.data or "",
                                  form.companions_present.data or 0)
    if done.ok:
        flash(f"{row.name} ist als vor Ort angemeldet und anwesend erfasst.", "success")
        return _back(event_id, f"vorort-{row.id}", keep_filter=False)  # the new line, whatever was searched
    return _walk_in_page(event, form)


def _walk_in_page(event, form: WalkInForm):
    return _render_list(event, walk_in_form=form, can_edit=event.state == EventState.VEROEFFENTLICHT), 422


@bp.route("/veranstaltungen/<int:event_id>/einlass/vor-ort/<int:attendance_id>", methods=["POST"])
def checkin_walk_in_mark(event_id: int, attendance_id: int):
    event = services.get_event(event_id)
    row = checkin.get_walk_in(event, attendance_id)
    form = MarkForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        flash(f"Bitte eine Zahl von 0 bis {checkin.MAX_PRESENT_COMPANIONS} Begleitpersonen angeben.", "error")
        return _back(event_id, f"vorort-{attendance_id}")
    with transaction() as done:
        checkin.check_in_walk_in(row, form.companions_present.data)
    if done.ok:
        flash(f"{row.name} ist anwesend.", "success")
    return _back(event_id, f"vorort-{attendance_id}")


@bp.route("/veranstaltungen/<int:event_id>/einlass/vor-ort/<int:attendance_id>/zuruecknehmen", methods=["POST"])
def checkin_walk_in_undo(event_id: int, attendance_id: int):
    event = services.get_event(event_id)
    row = checkin.get_walk_in(event, attendance_id)
    if not MarkForm().validate_on_submit():
        abort(400)
    with transaction() as done:
        checkin.undo(row)
    if done.ok:
        flash(f"Zurückgenommen: {row.name} ist nicht mehr als anwesend erfasst.", "success")
    return _back(event_id, f"vorort-{attendance_id}")


@bp.route("/veranstaltungen/<int:event_id>/einlass/vor-ort/<int:attendance_id>/entfernen", methods=["POST"])
def checkin_walk_in_remove(event_id: int, attendance_id: int):
    event = services.get_event(event_id)
    row = checkin.get_walk_in(event, attendance_id)
    if not MarkForm().validate_on_submit():
        abort(400)
    name = row.name
    with transaction() as done:
        checkin.remove_walk_in(row)
    if done.ok:
        flash(f"{name} wurde aus der Liste entfernt.", "success")
    return _back(event_id)


# --- Nachbereitung ------------------------------------------------------------------------------------------

@bp.route("/veranstaltungen/<int:event_id>/nachbereitung", methods=["GET"])
@requires_role("sachbearbeitung")  # a form page: reading it is for those who may send it
def followup_form(event_id: int, form: FollowupForm | None = None):
    event = services.get_event(event_id)
    sizes = {a.value: len(followup_recipients(event, a.value)) for a in Audience}
    return render_template("events/followup.html", event=event, form=form or FollowupForm(), sizes=sizes,
                           ended=checkin.ended(event))


@bp.route("/veranstaltungen/<int:event_id>/nachbereitung", methods=["POST"])
def followup(event_id: int):
    event = services.get_event(event_id)
    form = FollowupForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return followup_form(event_id, form), 422
    with transaction(form) as done:
        uploads = [file for file in (form.attachments.data or []) if file and file.filename]
        attachments = [services.circular_attachment(upload.filename or "", upload.read()) for upload in uploads]
        result = prepare_followup(event, form.audience.data, form.subject.data, form.text.data, attachments=attachments,
                                  created_by_id=current_user.id)
    if not done.ok:
        return followup_form(event_id, form), 422
    flash(f"{anzahl(result.queued, 'Nachricht ist', 'Nachrichten sind')} als Entwurf vorbereitet: Bitte prüfen Sie die "
          "Vorschau, senden Sie sich eine Testnachricht und klicken Sie dann auf „Senden“.", "success")
    return redirect(url_for("outbox.mailing", mailing_id=result.mailing_id))


def _attendance_counts(event):
    found = checkin.counts(event)
    found["ended"] = int(checkin.ended(event))
    return found


@bp.app_context_processor
def _attendance_helpers():
    """``attendance_counts(event)`` for the event page's attendance block (events/_attendance.html)."""
    return {"attendance_counts": _attendance_counts}
