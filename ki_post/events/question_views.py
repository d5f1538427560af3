"""Staff pages for an event's own questions (routes on the events blueprint), and the helpers the
answer pages use to show and read the questions."""
from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from ..auth.access import requires_role
from ..formatting import anzahl
from ..transaction import Outcome, transaction
from . import questions, services
from .models import Event, Invitation, InvitationState
from .question_models import Question, QuestionKind
from .blueprint import bp

BLANK_OPTION_ROWS = 4


class QuestionForm(FlaskForm):
    label = StringField("Frage", validators=[InputRequired("Bitte geben Sie die Frage ein."), Length(max=300)])
    kind = SelectField("Art", choices=[("", "– bitte wählen –"), *QuestionKind.choices()],
                       validators=[InputRequired("Bitte wählen Sie die Art der Frage.")],
                       invalid_choice_message="Bitte eine Art aus der Liste wählen.")
    required = BooleanField("Pflichtangabe (bei einer Zusage)")
    help_text = TextAreaField("Hinweis (optional)", validators=[Optional(), Length(max=1000)])
    options = HiddenField("Möglichkeiten")  # carries the errors of the option rows


class DeleteQuestionForm(FlaskForm):
    confirmed = BooleanField("Vorhandene Antworten mit löschen")


class MoveQuestionForm(FlaskForm):
    direction = HiddenField()


# --- Helpers for the answer pages (personal link, staff entry) ---------------------------------------------

@bp.app_template_global("event_questions")
def event_questions(event: Event) -> list[Question]:
    return questions.questions_of(event.id)


@bp.app_template_global("question_values")
def question_values(event: Event, invitation: Invitation | None = None) -> dict[int, list[str]]:
    """What the fields show: the posted values after an error, else the person's stored answers."""
    found = questions.questions_of(event.id)
    if request.method == "POST":
        return questions.raw_from_form(found, request.form)
    return questions.raw_from_answers(found, invitation.answers if invitation else {})


@bp.app_template_global("option_free")
def option_free(event: Event) -> dict[int, int]:
    return questions.option_free(event.id)


@bp.app_template_global("held_options")
def held_options(invitation: Invitation) -> set[int]:
    """Options whose seat this person holds already (never shown as full to them)."""
    if invitation.state != InvitationState.ZUGESAGT:
        return set()
    return questions.chosen_options(questions.questions_of(invitation.event_id), invitation.answers)


@bp.app_template_global("readable_answers")
def readable_answers(invitation: Invitation, found: list[Question] | None = None) -> dict[str, str]:
    return questions.readable_answers(invitation, found)


def responses(event: Event) -> dict[int, list[str]]:
    """The posted answers to the event's questions (for ``services.answer(responses=…)``)."""
    return questions.raw_from_form(questions.questions_of(event.id), request.form)


def question_errors(done: Outcome, form: FlaskForm) -> dict[str, str]:
    """The errors at the question fields after a failed answer (the general message leaves the form's list)."""
    if not isinstance(done.error, questions.QuestionError):
        return {}
    if str(done.error) in form.form_errors:
        form.form_errors.remove(str(done.error))
    return done.error.errors


def unchecked_errors(event: Event, answer: str | None) -> dict[str, str]:
    """When the form itself failed (no answer chosen …), the questions' errors too, so that all show at once."""
    try:
        questions.validate_responses(questions.questions_of(event.id), responses(event),
                                     accepting=answer == InvitationState.ZUGESAGT)
    except questions.QuestionError as error:
        return error.errors
    return {}


@bp.app_template_global("question_summary")
def summary_entries(event: Event, errors: dict[str, str]) -> list[tuple[str, str, str]]:
    """(anchor, question, message) for the error summary above a form."""
    return [(q.field, q.label, errors[q.field]) for q in questions.questions_of(event.id) if q.field in errors]


# --- Staff pages -------------------------------------------------------------------------------------------

def _option_rows(question: Question | None) -> list[dict[str, Any]]:
    """The option rows of the form: as posted, or the question's options, plus empty rows for new ones."""
    if request.method == "POST":
        rows, n = [], 0
        while f"option_label-{n}" in request.form:
            rows.append({"id": request.form.get(f"option_id-{n}", ""), "label": request.form.get(f"option_label-{n}", ""),
                         "capacity": request.form.get(f"option_capacity-{n}", "")})
            n += 1
        return rows
    rows = [{"id": str(o.id), "label": o.label, "capacity": "" if o.capacity is None else str(o.capacity)}
            for o in (question.options if question else [])]
    return rows + [{"id": "", "label": "", "capacity": ""} for _ in range(BLANK_OPTION_ROWS)]


def _question_data(form: QuestionForm) -> questions.QuestionData:
    options, bad = [], {}
    for n, row in enumerate(_option_rows(None)):
        capacity_text = row["capacity"].strip()
        if capacity_text and not capacity_text.isdigit():
            bad[f"option_capacity-{n}"] = "Plätze bitte als ganze Zahl angeben (leer = unbegrenzt)."
            continue
        option_id = int(row["id"]) if row["id"].strip().isdigit() else None
        options.append(questions.OptionData(row["label"], int(capacity_text) if capacity_text else None, option_id))
    if bad:
        raise _BadRows(bad)
    return questions.QuestionData(form.label.data or "", form.kind.data or "", bool(form.required.data),
                                  form.help_text.data or "", options)


class _BadRows(Exception):
    """Option rows the form cannot read; ``errors`` maps the input's id → German message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


def _row_errors(done: Outcome, form: QuestionForm) -> dict[str, str]:
    """The service's errors of single option rows, shown at their row (not once more above the table)."""
    if not isinstance(done.error, questions.OptionRowError):
        return {}
    form.options.errors = [message for message in form.options.errors if message != str(done.error)]
    return {f"option_label-{n}": message for n, message in done.error.rows.items()}


def _row_summary(row_errors: dict[str, str]) -> list[tuple[str, str, str]]:
    """(anchor, label, message) for the error summary: the row's own field, named as its hidden label."""
    entries = []
    for anchor, message in row_errors.items():
        column, _, n = anchor.partition("-")
        label = f"Möglichkeit {int(n) + 1}" if column == "option_label" else f"Plätze für Möglichkeit {int(n) + 1}"
        entries.append((anchor, label, message))
    return entries


def _list_page(event: Event, form: QuestionForm | None = None, status: int = 200, row_errors: dict[str, str] | None = None):
    found = questions.questions_of(event.id)
    taken = questions.option_seats_taken(event.id, questions=found)
    answered = {q.id: len(questions.answered_invitations(q)) for q in found}
    chosen = {q.id: questions.choosers(q) for q in found}
    return render_template("events/questions.html", event=event, questions=found, taken=taken, answered=answered,
                           chosen=chosen, form=form or QuestionForm(formdata=None), rows=_option_rows(None),
                           row_errors=row_errors or {}, row_summary=_row_summary(row_errors or {}),
                           delete_form=DeleteQuestionForm(formdata=None), move_form=MoveQuestionForm(formdata=None)), status


@bp.route("/veranstaltungen/<int:event_id>/fragen", methods=["GET"])
@requires_role("sachbearbeitung")  # a form page: reading it is for those who may send it
def questions_page(event_id: int):
    return _list_page(services.get_event(event_id))


@bp.route("/veranstaltungen/<int:event_id>/fragen", methods=["POST"])
def question_new(event_id: int):
    event = services.get_event(event_id)
    form = QuestionForm()
    if form.validate_on_submit():
        try:
            data = _question_data(form)
        except _BadRows as bad:
            return _list_page(event, form, 422, bad.errors)
        with transaction(form) as done:
            questions.add_question(event, data)
        if done.ok:
            flash("Die Frage wurde angelegt.", "success")
            return redirect(url_for("events.questions_page", event_id=event_id))
        return _list_page(event, form, 422, _row_errors(done, form))
    elif form.csrf_token.errors:
        abort(400)
    return _list_page(event, form, 422)


@bp.route("/veranstaltungen/<int:event_id>/fragen/<int:question_id>", methods=["GET"])
@requires_role("sachbearbeitung")  # a form page: reading it is for those who may send it
def question_edit(event_id: int, question_id: int, form: QuestionForm | None = None, status: int = 200,
                  row_errors: dict[str, str] | None = None):
    event = services.get_event(event_id)
    question = questions.get_question(event, question_id)
    if form is None:
        form = QuestionForm(formdata=None, obj=question)
    return render_template("events/question_form.html", event=event, question=question, form=form,
                           rows=_option_rows(question), answered=len(questions.answered_invitations(question)),
                           chosen=questions.choosers(question), row_errors=row_errors or {},
                           row_summary=_row_summary(row_errors or {})), status


@bp.route("/veranstaltungen/<int:event_id>/fragen/<int:question_id>", methods=["POST"])
def question_save(event_id: int, question_id: int):
    event = services.get_event(event_id)
    question = questions.get_question(event, question_id)
    form = QuestionForm()
    if form.validate_on_submit():
        try:
            data = _question_data(form)
        except _BadRows as bad:
            return question_edit(event_id, question_id, form, 422, bad.errors)
        with transaction(form) as done:
            warnings = questions.update_question(question, data)
        if done.ok:
            flash("Die Frage wurde gespeichert.", "success")
            for warning in warnings:
                flash(warning, "warning")
            return redirect(url_for("events.questions_page", event_id=event_id))
        return question_edit(event_id, question_id, form, 422, _row_errors(done, form))
    elif form.csrf_token.errors:
        abort(400)
    return question_edit(event_id, question_id, form, 422)


@bp.route("/veranstaltungen/<int:event_id>/fragen/<int:question_id>/loeschen", methods=["POST"])
def question_delete(event_id: int, question_id: int):
    event = services.get_event(event_id)
    question = questions.get_question(event, question_id)
    form = DeleteQuestionForm()
    if not form.validate_on_submit():
        abort(400)
    with transaction() as done:
        removed = questions.delete_question(question, confirmed=bool(form.confirmed.data))
    if done.ok:
        flash("Die Frage wurde gelöscht" + (f", mit {anzahl(removed, 'Antwort', 'Antworten')}." if removed else "."),
              "success")
    return redirect(url_for("events.questions_page", event_id=event_id))


@bp.route("/veranstaltungen/<int:event_id>/fragen/<int:question_id>/verschieben", methods=["POST"])
def question_move(event_id: int, question_id: int):
    event = services.get_event(event_id)
    question = questions.get_question(event, question_id)
    form = MoveQuestionForm()
    if not form.validate_on_submit():
        abort(400)
    with transaction():
        questions.move_question(question, -1 if form.direction.data == "hoch" else 1)
    return redirect(url_for("events.questions_page", event_id=event_id))
