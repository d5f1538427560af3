from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, MultipleFileField
from wtforms import BooleanField, HiddenField, IntegerField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields import DateField, TimeField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from .models import Channel, InvitationState

REQUIRED = "Bitte ausfüllen."
# An empty first choice, so that a staff member has to pick consciously instead of accepting the first entry.
PLEASE_CHOOSE = ("", "– bitte wählen –")


def former_answer_code(value: str | None) -> str | None:
    """An answer page loaded before the codes became German posts the English code; it still counts."""
    return InvitationState.FORMER_CODES.get(value, value) if isinstance(value, str) else value


def optional_int(value: str | int | None) -> int | None:
    """Coerces a select value; the empty placeholder becomes None (int("") would fail already when rendering)."""
    return None if value in ("", None) else int(value)


class EventForm(FlaskForm):
    title = StringField("Titel", validators=[DataRequired(REQUIRED), Length(max=200)])
    description = TextAreaField("Beschreibung", validators=[Optional(), Length(max=10000)])
    start_date = DateField("Datum (Beginn)", validators=[InputRequired("Bitte ein Datum angeben (TT.MM.JJJJ).")])
    start_time = TimeField("Uhrzeit (Beginn)", validators=[InputRequired("Bitte eine Uhrzeit angeben (HH:MM).")])
    end_date = DateField("Datum (Ende)", validators=[InputRequired("Bitte ein Datum angeben (TT.MM.JJJJ).")])
    end_time = TimeField("Uhrzeit (Ende)", validators=[InputRequired("Bitte eine Uhrzeit angeben (HH:MM).")])
    place_name = StringField("Ort (Name)", validators=[Optional(), Length(max=200)])
    place_address = StringField("Anschrift", validators=[Optional(), Length(max=300)])
    room = StringField("Raum", validators=[Optional(), Length(max=100)])
    deadline = DateField("Antwortfrist (bis einschließlich)", validators=[Optional()])
    capacity = IntegerField("Plätze (leer = unbegrenzt)", validators=[Optional(), NumberRange(1, 100000, "1 bis 100.000.")])
    companions_allowed = IntegerField("Begleitpersonen je Einladung", default=0,
                                      validators=[InputRequired(REQUIRED), NumberRange(0, 20, "0 bis 20.")])
    ask_remarks = BooleanField("Bemerkungen erfragen", default=True)
    ask_dietary = BooleanField("Ernährungswünsche erfragen", default=False)


class InviteForm(FlaskForm):
    verteiler_id = SelectField("Verteiler", coerce=int, validators=[InputRequired("Bitte einen Verteiler wählen.")])
    attachment = FileField("Rundschreiben anhängen (optional, PDF oder Word)")


class ConfirmForm(FlaskForm):
    """A bare POST with CSRF token (publish, update)."""


class CancelForm(FlaskForm):
    # No default: a POST without the field (an old one-click form, a stray request) must not count as yes.
    confirmed = HiddenField()
    reason = TextAreaField("Grund der Absage", validators=[DataRequired("Bitte geben Sie den Grund der Absage an."),
                                                          Length(max=1000, message="Höchstens 1.000 Zeichen.")])


class ReminderForm(FlaskForm):
    include_accepted = BooleanField("Auch an Personen mit Zusage senden")
    confirmed = HiddenField()
    repeat = BooleanField("Ja, trotzdem erneut erinnern")


class RsvpForm(FlaskForm):
    answer = RadioField("Ihre Antwort", choices=[(InvitationState.ZUGESAGT.value, "Ich nehme teil (Zusage)"),
                                                 (InvitationState.ABGESAGT.value, "Ich nehme nicht teil (Absage)")],
                        filters=[former_answer_code], validators=[InputRequired("Bitte wählen Sie Zusage oder Absage.")])
    companions = IntegerField("Anzahl Begleitpersonen", default=0, validators=[Optional(), NumberRange(0, 20, "0 bis 20.")])
    remark = TextAreaField("Bemerkung", validators=[Optional(), Length(max=2000)])
    dietary = StringField("Ernährungswünsche", validators=[Optional(), Length(max=500)])


class StaffAnswerForm(RsvpForm):
    invitation_id = SelectField("Eingeladene Person", coerce=optional_int, validators=[InputRequired("Bitte eine Person wählen.")],
                                invalid_value_message="Bitte eine Person aus der Liste wählen.",
                                invalid_choice_message="Bitte eine Person aus der Liste wählen.")
    answer = SelectField("Antwort", choices=[PLEASE_CHOOSE, *InvitationState.choices(
                             InvitationState.ZUGESAGT, InvitationState.ABGESAGT, InvitationState.VORLAEUFIG)],
                         filters=[former_answer_code], validators=[InputRequired("Bitte eine Antwort wählen.")],
                         invalid_choice_message="Bitte eine Antwort aus der Liste wählen.")
    channel = SelectField("Antwortweg", choices=[*Channel.choices(Channel.TELEFON, Channel.BRIEF),
                                                 (Channel.SACHBEARBEITUNG.value, "persönlich/sonstiges")])
    override_deadline = BooleanField("Trotz abgelaufener Antwortfrist erfassen")


class AssignReplyForm(FlaskForm):
    invitation_id = SelectField("Eingeladene Person", coerce=optional_int, validate_choice=False,
                                validators=[InputRequired("Bitte wählen Sie die eingeladene Person.")])
    override_deadline = BooleanField("Trotz abgelaufener Antwortfrist übernehmen")


class ReplyUploadForm(FlaskForm):
    dateien = MultipleFileField("Dateien mit Kalenderantworten oder Zustellungsnachrichten (.eml, .ics)",
                                render_kw={"accept": ".eml,.ics,.msg,message/rfc822,text/calendar"})
