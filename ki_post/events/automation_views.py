"""Event pages for copying an event and for its automatic reminders (routes on the events blueprint).

- ``/veranstaltungen/<id>/kopieren``: new start and end (prefilled one year later) → the copy's page;
- ``/veranstaltungen/<id>/automatische-erinnerungen`` (POST): the two settings of ``automation``;
  the event page shows them through the template global ``automatic_reminder_panel``.
"""
from __future__ import annotations

from datetime import date, datetime

from flask import abort, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField
from wtforms.fields import DateField, TimeField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from ..auth.access import requires_role
from ..formatting import BERLIN
from ..transaction import transaction
from . import automation, copying, services
from .blueprint import bp

_DAYS = NumberRange(1, automation.MAX_DAYS, f"1 bis {automation.MAX_DAYS} Tage (leer = aus).")


class CopyForm(FlaskForm):
    title = StringField("Titel der Kopie", validators=[InputRequired("Bitte geben Sie einen Titel an."), Length(max=200)])
    start_date = DateField("Datum (Beginn)", validators=[InputRequired("Bitte ein Datum angeben (TT.MM.JJJJ).")])
    start_time = TimeField("Uhrzeit (Beginn)", validators=[InputRequired("Bitte eine Uhrzeit angeben (HH:MM).")])
    end_date = DateField("Datum (Ende)", validators=[InputRequired("Bitte ein Datum angeben (TT.MM.JJJJ).")])
    end_time = TimeField("Uhrzeit (Ende)", validators=[InputRequired("Bitte eine Uhrzeit angeben (HH:MM).")])


class AutomaticReminderForm(FlaskForm):
    remind_open_days = IntegerField("Tage vor der Antwortfrist an alle ohne Antwort", validators=[Optional(), _DAYS])
    remind_participants_days = IntegerField("Tage vor Beginn an alle mit Zusage", validators=[Optional(), _DAYS])


def _one_year_later(value: datetime) -> tuple[date, object]:
    local = value.astimezone(BERLIN)
    try:
        day = local.date().replace(year=local.year + 1)
    except ValueError:  # 29 February
        day = local.date().replace(year=local.year + 1, day=28)
    return day, local.time().replace(tzinfo=None)


@bp.route("/veranstaltungen/<int:event_id>/kopieren", methods=["GET", "POST"])
@requires_role("sachbearbeitung")  # a form page: reading it is for those who may send it
def copy(event_id: int):
    source = services.get_event(event_id)
    form = CopyForm()
    if form.validate_on_submit():
        with transaction(form, field_map={"start": "start_date", "end": "end_date"}) as done:
            target = copying.copy_event(
                source, datetime.combine(form.start_date.data, form.start_time.data, tzinfo=BERLIN),
                datetime.combine(form.end_date.data, form.end_time.data, tzinfo=BERLIN), title=form.title.data)
        if done.ok:
            flash(f"Die Veranstaltung „{target.title}“ wurde als Entwurf kopiert: Bitte prüfen Sie die Angaben und "
                  "laden Sie dann ein.", "success")
            return redirect(url_for("events.detail", event_id=target.id))
    elif not form.is_submitted():
        form.start_date.data, form.start_time.data = _one_year_later(source.start_at)
        form.end_date.data, form.end_time.data = _one_year_later(source.end_at)
        start = datetime.combine(form.start_date.data, form.start_time.data, tzinfo=BERLIN)
        form.title.data = copying.next_title(source, start)
    status = 422 if form.errors or form.form_errors else 200
    return render_template("events/copy.html", event=source, form=form), status


@bp.route("/veranstaltungen/<int:event_id>/automatische-erinnerungen", methods=["POST"])
@requires_role("sachbearbeitung")
def automatic_reminders(event_id: int):
    event = services.get_event(event_id)
    form = AutomaticReminderForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        for field in (form.remind_open_days, form.remind_participants_days):
            for message in field.errors:
                flash(f"{field.label.text}: {message}", "error")
        return redirect(url_for("events.detail", event_id=event_id, _anchor="automatik"))
    with transaction() as done:
        automation.set_automatic_reminders(event, form.remind_open_days.data, form.remind_participants_days.data)
    if done.ok:
        flash("Die automatischen Erinnerungen sind gespeichert.", "success")
    return redirect(url_for("events.detail", event_id=event_id, _anchor="automatik"))


@bp.app_template_global()
def automatic_reminder_panel(event) -> dict:
    """What the event page shows of the automatic reminders: each plan, who would get it now, the form."""
    plans = automation.plans(event)
    waiting = {p.kind: len(automation.recipients_for(event, p.kind, p.due_at))
               for p in plans if p.status in ("geplant", "faellig") and event.state == "veroeffentlicht"}
    form = AutomaticReminderForm(formdata=None, remind_open_days=event.remind_open_days,
                                 remind_participants_days=event.remind_participants_days)
    return {"plans": plans, "waiting": waiting, "form": form}
