from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..auth.access import public, requires_role
from ..formatting import BERLIN, anzahl
from ..errors import ValidationError
from ..extensions import limiter
from ..recipients import services as recipients
from ..transaction import get_or_404, transaction
from .blueprint import bp
from . import question_views, services
from .forms import (PLEASE_CHOOSE, AssignReplyForm, CancelForm, ConfirmForm, EventForm, InviteForm, ReminderForm,
                    ReplyUploadForm, RsvpForm, StaffAnswerForm)
from .models import Channel, Event, EventState, Invitation, InvitationState



def _rsvp_limit() -> str:
    return current_app.config.get("RSVP_RATE_LIMIT", "30 per minute")


def _user_id() -> int | None:
    return current_user.id if current_user.is_authenticated else None


def _event_data(form: EventForm) -> services.EventData:
    deadline = None
    if form.deadline.data:
        deadline = datetime.combine(form.deadline.data, time(23, 59), tzinfo=BERLIN)
    return services.EventData(
        title=form.title.data or "",
        description=form.description.data or "",
        start=datetime.combine(form.start_date.data, form.start_time.data, tzinfo=BERLIN),
        end=datetime.combine(form.end_date.data, form.end_time.data, tzinfo=BERLIN),
        place_name=form.place_name.data or "",
        place_address=form.place_address.data or "",
        room=form.room.data or "",
        deadline=deadline,
        capacity=form.capacity.data,
        companions_allowed=form.companions_allowed.data or 0,
        ask_remarks=form.ask_remarks.data,
        ask_dietary=form.ask_dietary.data,
    )


_FIELD_MAP = {"start": "start_date", "end": "end_date"}


# --- Staff pages -----------------------------------------------------------------------------------------

@bp.route("/veranstaltungen/")
def index():
    return render_template("events/index.html", events=services.list_events())


@bp.route("/veranstaltungen/neu", methods=["GET", "POST"])
@requires_role("sachbearbeitung")  # a form page: reading it is for those who may send it
def new():
    form = EventForm()
    if form.validate_on_submit():
        with transaction(form, field_map=_FIELD_MAP) as done:
            event = services.create_event(_event_data(form))
        if done.ok:
            flash(f"Die Veranstaltung „{event.title}“ wurde als Entwurf angelegt.", "success")
            return redirect(url_for("events.detail", event_id=event.id))
    status = 422 if form.errors or form.form_errors else 200
    return render_template("events/form.html", form=form, event=None), status


@bp.route("/veranstaltungen/<int:event_id>/bearbeiten", methods=["GET", "POST"])
@requires_role("sachbearbeitung")  # a form page: reading it is for those who may send it
def edit(event_id: int):
    event = services.get_event(event_id)
    if event.state == EventState.ABGESAGT:
        flash("Die Veranstaltung ist abgesagt und kann nicht mehr geändert werden.", "error")
        return redirect(url_for("events.detail", event_id=event.id))
    form = EventForm(obj=None)
    if request.method == "GET":
        start, end = event.start_at.astimezone(BERLIN), event.end_at.astimezone(BERLIN)
        form.title.data, form.description.data = event.title, event.description
        form.start_date.data, form.start_time.data = start.date(), start.time()
        form.end_date.data, form.end_time.data = end.date(), end.time()
        form.place_name.data, form.place_address.data, form.room.data = event.place_name, event.place_address, event.room
        form.deadline.data = event.deadline.astimezone(BERLIN).date() if event.deadline else None
        form.capacity.data, form.companions_allowed.data = event.capacity, event.companions_allowed
        form.ask_remarks.data, form.ask_dietary.data = event.ask_remarks, event.ask_dietary
    elif form.validate_on_submit():
        with transaction(form, field_map=_FIELD_MAP) as done:
            result = services.update_event(event, _event_data(form), created_by_id=_user_id())
        if done.ok:
            flash(_update_message(result), "success")
            if result.mailing_id:
                flash(f"{anzahl(result.updates, 'Person hat', 'Personen haben')} die bisherigen Angaben schon erhalten: "
                      "Die Aktualisierung ist als Entwurf vorbereitet. Bitte prüfen Sie sie und klicken Sie auf „Senden“.",
                      "warning")
                return redirect(url_for("outbox.mailing", mailing_id=result.mailing_id))
            return redirect(url_for("events.detail", event_id=event.id))
    status = 422 if form.errors or form.form_errors else 200
    return render_template("events/form.html", form=form, event=event), status


def _update_message(result: services.UpdateResult) -> str:
    parts = ["Die Änderungen wurden gespeichert."]
    if result.rewritten:
        parts.append(f"{anzahl(result.rewritten, 'noch nicht versendete Nachricht wurde', 'noch nicht versendete Nachrichten wurden')} "
                     "mit den neuen Angaben neu erstellt.")
    if result.withdrawn:
        parts.append(f"{anzahl(result.withdrawn, 'Nachricht wurde', 'Nachrichten wurden')} zurückgezogen, weil sie nicht mehr passte(n).")
    if result.skipped:
        parts.append(f"{anzahl(result.skipped, 'Nachricht ließ', 'Nachrichten ließen')} sich nicht neu erstellen (Grund im Postausgang).")
    if result.moved_up:
        parts.append(f"{anzahl(result.moved_up, 'Person ist', 'Personen sind')} von der Warteliste nachgerückt.")
    return " ".join(parts)


def _answer_choices(event: Event) -> list[tuple[int | str, str]]:
    return [PLEASE_CHOOSE] + [(i.id, f"{i.name or i.email} ({i.organisation_name or 'ohne Organisation'})")
                              for i in sorted(event.invitations, key=lambda i: i.name.lower())]


def _detail_page(event: Event, answer_form: StaffAnswerForm | None = None, **extra):
    q = request.args.get("q", "").strip()[:100]
    state = request.args.get("status", "")
    state = InvitationState.parse(InvitationState.FORMER_CODES.get(state, state)) or ""  # old bookmarks keep working
    invite_form = InviteForm()
    invite_form.verteiler_id.choices = [(v.id, v.name) for v in recipients.all_verteiler()]
    if answer_form is None:
        answer_form = StaffAnswerForm()
        answer_form.invitation_id.choices = _answer_choices(event)
    return render_template(
        "events/detail.html", event=event, overview=services.overview(event, q=q, state=state), q=q, state=state,
        states=InvitationState.labels(), invite_form=invite_form, answer_form=answer_form, confirm_form=ConfirmForm(),
        mailings=services.event_mailings(event), deadline_passed=services.deadline_passed(event), **extra,
    )


@bp.route("/veranstaltungen/<int:event_id>")
def detail(event_id: int):
    return _detail_page(services.get_event(event_id))


def _action(event_id: int, work, success: Callable[[int], str]):
    event = services.get_event(event_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    with transaction() as done:
        result = work(event)
    if done.ok:
        flash(success(result), "success")
    return redirect(url_for("events.detail", event_id=event_id))


@bp.route("/veranstaltungen/<int:event_id>/veroeffentlichen", methods=["POST"])
def publish(event_id: int):
    return _action(event_id, services.publish_event, lambda _: "Die Veranstaltung ist veröffentlicht.")


# Cancelling withdraws what waits and prepares METHOD:CANCEL; it cannot be undone, so the button on the
# detail page only leads here, and the POST needs the explicit "confirmed" field and a reason.
@bp.route("/veranstaltungen/<int:event_id>/absagen", methods=["GET"])
@requires_role("sachbearbeitung")
def cancel_confirm(event_id: int, form: CancelForm | None = None):
    event = services.get_event(event_id)
    if event.state == EventState.ABGESAGT:
        flash("Die Veranstaltung ist bereits abgesagt.", "error")
        return redirect(url_for("events.detail", event_id=event_id))
    return render_template("events/cancel.html", event=event, form=form or CancelForm(),
                           recipients=len(services.cancel_recipients(event)))


@bp.route("/veranstaltungen/<int:event_id>/absagen", methods=["POST"])
def cancel(event_id: int):
    event = services.get_event(event_id)
    form = CancelForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return cancel_confirm(event_id, form), 422
    if form.confirmed.data != "ja":
        flash("Die Veranstaltung wurde nicht abgesagt: Bitte bestätigen Sie die Absage auf dieser Seite.", "error")
        return redirect(url_for("events.cancel_confirm", event_id=event_id))
    with transaction() as done:
        result = services.cancel_event(event, form.reason.data or "", created_by_id=_user_id())
    if not done.ok:
        return redirect(url_for("events.detail", event_id=event_id))
    withdrawn = (f" {anzahl(result.withdrawn, 'noch nicht versendete Nachricht wurde', 'noch nicht versendete Nachrichten wurden')}"
                 " zurückgezogen.") if result.withdrawn else ""
    if result.mailing_id:
        flash(f"Die Veranstaltung ist abgesagt.{withdrawn} {anzahl(result.recipients, 'Absage ist', 'Absagen sind')} als "
              "Entwurf vorbereitet: Bitte prüfen Sie sie und klicken Sie auf „Senden“.", "success")
        return redirect(url_for("outbox.mailing", mailing_id=result.mailing_id))
    flash(f"Die Veranstaltung ist abgesagt.{withdrawn} Niemand hatte sie schon erhalten; es werden keine Absagen versendet.",
          "success")
    return redirect(url_for("events.detail", event_id=event_id))


@bp.route("/veranstaltungen/<int:event_id>/erinnern", methods=["GET"])
@requires_role("sachbearbeitung")
def remind_confirm(event_id: int, form: ReminderForm | None = None):
    event = services.get_event(event_id)
    if event.state == EventState.ABGESAGT:
        flash("Die Veranstaltung ist abgesagt; es werden keine Erinnerungen versendet.", "error")
        return redirect(url_for("events.detail", event_id=event_id))
    return render_template("events/remind.html", event=event, form=form or ReminderForm(),
                           open_count=len(services.reminder_recipients(event)),
                           all_count=len(services.reminder_recipients(event, include_accepted=True)),
                           recent=services.recent_reminder(event), warn_hours=current_app.config.get("REMINDER_WARN_HOURS", 72))


@bp.route("/veranstaltungen/<int:event_id>/erinnern", methods=["POST"])
def remind(event_id: int):
    event = services.get_event(event_id)
    form = ReminderForm()
    if not form.validate_on_submit():
        abort(400)
    if form.confirmed.data != "ja":
        flash("Es wurde nichts vorbereitet: Bitte bestätigen Sie die Erinnerung auf dieser Seite.", "error")
        return redirect(url_for("events.remind_confirm", event_id=event_id))
    with transaction(form) as done:
        result = services.send_reminders(event, bool(form.include_accepted.data), created_by_id=_user_id(),
                                         repeat_confirmed=bool(form.repeat.data))
    if not done.ok:
        if form.repeat.errors:
            return remind_confirm(event_id, form), 422
        flash(str(done.error), "error")
        return redirect(url_for("events.detail", event_id=event_id))
    flash(f"{anzahl(result.reminded, 'Erinnerung ist', 'Erinnerungen sind')} als Entwurf vorbereitet: Bitte prüfen Sie sie "
          "und klicken Sie auf „Senden“.", "success")
    return redirect(url_for("outbox.mailing", mailing_id=result.mailing_id))


@bp.route("/veranstaltungen/<int:event_id>/einladen", methods=["POST"])
def invite(event_id: int):
    event = services.get_event(event_id)
    form = InviteForm()
    form.verteiler_id.choices = [(v.id, v.name) for v in recipients.all_verteiler()]
    if not form.validate_on_submit():
        flash("Bitte wählen Sie einen Verteiler.", "error")
        return redirect(url_for("events.detail", event_id=event_id))
    with transaction(flash_not_found=True) as done:
        upload = form.attachment.data
        attachments = [services.circular_attachment(upload.filename or "", upload.read())] if upload and upload.filename else []
        result = services.invite(event, verteiler_id=form.verteiler_id.data, attachments=attachments, created_by_id=_user_id())
    if done.ok:
        already = (" " + anzahl(result.already, "Kontakt war bereits eingeladen und erhält",
                                "Kontakte waren bereits eingeladen und erhalten") + " keine zweite Einladung."
                   if result.already else "")
        if result.mailing_id is None:
            flash(f"Es wurde keine Einladung vorbereitet.{already}", "success")
            return redirect(url_for("events.detail", event_id=event_id))
        skipped = (f" {anzahl(result.skipped, 'Einladung ließ', 'Einladungen ließen')} sich nicht erstellen (Grund in der Liste)."
                   if result.skipped else "")
        flash(f"{anzahl(result.invited, 'Einladung ist', 'Einladungen sind')} als Entwurf vorbereitet.{already}{skipped} "
              "Bitte prüfen Sie die Vorschau und klicken Sie auf „Senden“.", "success")
        return redirect(url_for("outbox.mailing", mailing_id=result.mailing_id))
    return redirect(url_for("events.detail", event_id=event_id))


@bp.route("/veranstaltungen/<int:event_id>/antwort-erfassen", methods=["POST"])
def record_answer(event_id: int):
    event = services.get_event(event_id)
    form = StaffAnswerForm()
    form.invitation_id.choices = _answer_choices(event)
    if not form.validate_on_submit():
        return _detail_page(event, form), 422
    invitation = get_or_404(Invitation, form.invitation_id.data, "Einladung")
    with transaction() as done:
        result = services.answer(invitation, form.answer.data, companions=form.companions.data or 0,
                                 remark=form.remark.data or "", dietary=form.dietary.data or "", channel=form.channel.data,
                                 override_deadline=bool(form.override_deadline.data),
                                 responses=question_views.responses(event), keep_unanswered=True)
    if errors := question_views.question_errors(done, form):
        return _detail_page(event, form, question_errors=errors), 422
    if done.ok:
        unchanged = "" if result.changed else " (unverändert; keine neue Bestätigung)"
        flash(f"Antwort von {invitation.name or invitation.email} erfasst: {result.state.label}{unchanged}.",
              "success")
    return redirect(url_for("events.detail", event_id=event_id))


@bp.route("/veranstaltungen/<int:event_id>/teilnehmende.<fmt>")
def export(event_id: int, fmt: str):
    event = services.get_event(event_id)
    if fmt not in ("csv", "xlsx", "docx", "pdf"):
        abort(404)
    try:
        if fmt in ("csv", "xlsx"):
            data = services.export_participants(event, fmt)
        else:
            from .signin import sign_in_sheet

            data = sign_in_sheet(event, pdf=fmt == "pdf")
    except ValidationError as error:
        flash(str(error), "error")
        return redirect(url_for("events.detail", event_id=event_id))
    mimetypes = {
        "csv": "text/csv",  # Werkzeug adds "; charset=utf-8" to text/* itself
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "pdf": "application/pdf",
    }
    name = "teilnehmende" if fmt in ("csv", "xlsx") else "unterschriftenliste"
    return Response(data, mimetype=mimetypes[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}-{event.id}.{fmt}"'})


@bp.route("/veranstaltungen/<int:event_id>/teilnehmerliste.pdf")
def participant_list_pdf(event_id: int):
    """Who accepted, as PDF/A for the files (the same look as the sign-in sheet)."""
    from .signin import participant_list

    event = services.get_event(event_id)
    try:
        data = participant_list(event)
    except ValidationError as error:
        flash(str(error), "error")
        return redirect(url_for("events.detail", event_id=event_id))
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="teilnehmerliste-{event.id}.pdf"'})


@bp.route("/veranstaltungen/kalenderantworten", methods=["GET"])
def replies():
    return _replies_page()


def _replies_page(upload_form: ReplyUploadForm | None = None, **extra):
    open_replies = services.unmatched_replies()
    events = {r.event_id: services.get_event(r.event_id) for r in open_replies if r.event_id}
    return render_template("events/replies.html", replies=open_replies, form=AssignReplyForm(),
                           upload_form=upload_form or ReplyUploadForm(),
                           choices={r.id: services.assignable(r) for r in open_replies}, events=events,
                           closed={event_id: services.deadline_passed(event) for event_id, event in events.items()}, **extra)


@bp.route("/veranstaltungen/kalenderantworten/hochladen", methods=["POST"])
@requires_role("sachbearbeitung")
def upload_replies():
    form = ReplyUploadForm()
    if not form.validate_on_submit():
        abort(400)  # only the CSRF check can fail here
    uploads = [file for file in request.files.getlist(form.dateien.name) if file and file.filename]
    most, largest = current_app.config["REPLY_UPLOAD_MAX_FILES"], current_app.config["REPLY_UPLOAD_MAX_BYTES"]
    # Bounded before anything is parsed: the number of files, then each file's size as it is read.
    if not uploads:
        form.dateien.errors = ["Bitte mindestens eine .eml- oder .ics-Datei auswählen."]
        return _replies_page(form)
    if len(uploads) > most:
        form.dateien.errors = [f"Höchstens {most} Dateien auf einmal, bitte in mehreren Schritten hochladen."]
        return _replies_page(form)
    files, too_large = [], []
    for upload in uploads:
        data = upload.stream.read(largest + 1)
        if len(data) > largest:
            too_large.append(services.FileOutcome(upload.filename, f"Größer als {largest // 1024} KB; nicht verarbeitet.", ok=False))
        else:
            files.append((upload.filename, data))
    with transaction() as done:
        result, outcomes = services.ingest_files(files)
    if not done.ok:
        return _replies_page(form)
    order = {upload.filename: number for number, upload in enumerate(uploads)}
    outcomes = sorted([*outcomes, *too_large], key=lambda outcome: order.get(outcome.filename, 0))
    return _replies_page(form, outcomes=outcomes, summary=result.summary())


@bp.route("/veranstaltungen/kalenderantworten/<int:reply_id>", methods=["POST"])
def assign_reply(reply_id: int):
    form = AssignReplyForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        flash("Bitte wählen Sie die eingeladene Person aus der Liste.", "error")
        return redirect(url_for("events.replies"))
    with transaction(flash_not_found=True) as done:
        invitation = services.assign_reply(reply_id, form.invitation_id.data,
                                           override_deadline=bool(form.override_deadline.data))
    if done.ok:
        flash(f"Die Antwort wurde {invitation.name or invitation.email} zugeordnet.", "success")
    return redirect(url_for("events.replies"))


@bp.route("/veranstaltungen/kalenderantworten/<int:reply_id>/verwerfen", methods=["POST"])
def dismiss_reply(reply_id: int):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    with transaction(flash_not_found=True) as done:
        services.dismiss_reply(reply_id)
    if done.ok:
        flash("Die Kalenderantwort wurde verworfen.", "success")
    return redirect(url_for("events.replies"))


# --- Public answer page ------------------------------------------------------------------------------------

@bp.route("/antwort/<token>", methods=["GET"])
@public
def rsvp(token: str):
    invitation = services.invitation_by_token(token)
    form = RsvpForm()
    if invitation.state in InvitationState.WANTS_TO_COME | {InvitationState.ABGESAGT}:
        form.answer.data = (InvitationState.ZUGESAGT if invitation.state in InvitationState.WANTS_TO_COME
                            else InvitationState.ABGESAGT)
    form.companions.data = invitation.companions
    form.remark.data = invitation.remark
    form.dietary.data = invitation.dietary
    return _rsvp_page(invitation, form)


def _rsvp_page(invitation: Invitation, form: RsvpForm, status: int = 200, **extra):
    event = invitation.event
    closed = event.state != EventState.VEROEFFENTLICHT or services.deadline_passed(event)
    response = render_template("events/rsvp.html", invitation=invitation, event=event, form=form, closed=closed,
                               sender=services.sender_lines(), **extra)
    return response, status, {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


@bp.route("/antwort/<token>", methods=["POST"])
@public
@limiter.limit(_rsvp_limit, error_message="Zu viele Antworten von Ihrem Anschluss. Bitte warten Sie eine Minute.")
def rsvp_answer(token: str):
    invitation = services.invitation_by_token(token)
    form = RsvpForm()
    if form.validate_on_submit():
        with transaction(form, field_map=_FIELD_MAP) as done:
            result = services.answer(invitation, form.answer.data, companions=form.companions.data or 0,
                                     remark=form.remark.data or "", dietary=form.dietary.data or "", channel=Channel.LINK,
                                     responses=question_views.responses(invitation.event))
        if done.ok:
            messages = {
                InvitationState.ZUGESAGT: "Vielen Dank! Ihre Zusage ist gespeichert. Sie erhalten eine Bestätigung per E-Mail.",
                InvitationState.ABGESAGT: "Vielen Dank! Ihre Absage ist gespeichert. Sie erhalten eine Bestätigung per E-Mail.",
                InvitationState.WARTELISTE: "Die Veranstaltung ist leider ausgebucht. Sie stehen auf der Warteliste und erhalten eine Nachricht, sobald ein Platz frei wird.",
            }
            if not result.changed:
                flash("Ihre Antwort ist unverändert gespeichert; eine Bestätigung haben Sie bereits erhalten.", "success")
            elif result.previous == result.state:  # the same answer with new details (workshop, companions …)
                flash("Ihre Antwort wurde geändert und gespeichert. Sie erhalten eine neue Bestätigung per E-Mail.",
                      "success")
            else:
                flash(messages.get(result.state, "Ihre Antwort ist gespeichert."), "success")
            return redirect(url_for("events.rsvp", token=token))
        return _rsvp_page(invitation, form, 422, question_errors=question_views.question_errors(done, form))
    return _rsvp_page(invitation, form, 422,
                      question_errors=question_views.unchecked_errors(invitation.event, form.answer.data))

