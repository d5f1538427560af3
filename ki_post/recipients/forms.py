from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, EmailField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from .models import ORGANISATION_KINDS, REGIERUNGSBEZIRKE

REQUIRED = "Bitte ausfüllen."
ANREDE_CHOICES = [("", "keine Angabe"), ("frau", "Frau"), ("herr", "Herr")]
KIND_CHOICES = list(ORGANISATION_KINDS.items())
BEZIRK_CHOICES = [(name, name) for name in REGIERUNGSBEZIRKE]


class MultiCheckboxField(SelectMultipleField):
    """Checkboxes instead of a multi-select: operable without Ctrl-click, each with its own label."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ContactForm(FlaskForm):
    organisation_id = SelectField("Kommune", coerce=str, validators=[Optional()])
    anrede = SelectField("Anrede", choices=ANREDE_CHOICES)
    academic_title = StringField("Akademischer Titel", validators=[Length(max=50)])
    office_title = StringField("Amtsbezeichnung", validators=[Length(max=100)])
    first_name = StringField("Vorname", validators=[Length(max=100)])
    last_name = StringField("Nachname", validators=[DataRequired(REQUIRED), Length(max=100)])
    function = StringField("Funktion", validators=[Length(max=200)])
    email = EmailField("E-Mail-Adresse", validators=[DataRequired(REQUIRED), Length(max=254)])
    phone = StringField("Telefon", validators=[Length(max=50)])
    notes = TextAreaField("Notizen", validators=[Length(max=10000)])
    active = BooleanField("Aktiv (erhält Rundschreiben und Einladungen)", default=True)


class OrganisationForm(FlaskForm):
    name = StringField("Name der Kommune", validators=[DataRequired(REQUIRED), Length(max=200)])
    kind = SelectField("Art", choices=KIND_CHOICES)
    regierungsbezirk = SelectField("Regierungsbezirk", choices=[("", "keine Angabe"), *BEZIRK_CHOICES])
    ki_name = StringField("Name des Kommunalen Integrationszentrums", validators=[Length(max=200)])
    authority = StringField("Behörde (erste Zeile der Anschrift)", validators=[Length(max=200)])
    street = StringField("Straße und Hausnummer oder Postfach", validators=[Length(max=200)])
    postcode = StringField("PLZ", validators=[Length(max=10)])
    town = StringField("Ort", validators=[Length(max=100)])


class VerteilerForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(REQUIRED), Length(max=200)])
    description = TextAreaField("Beschreibung", validators=[Length(max=5000)])
    use_filter = BooleanField("Gespeicherten Filter verwenden (neue passende Ansprechpersonen gehören automatisch dazu)")
    kind = MultiCheckboxField("Art", choices=KIND_CHOICES)
    regierungsbezirk = MultiCheckboxField("Regierungsbezirk", choices=BEZIRK_CHOICES)
    q = StringField("Suchtext", validators=[Length(max=200)])
    members = TextAreaField("Feste Mitglieder: E-Mail-Adressen, eine je Zeile", validators=[Length(max=500_000)])


class ImportUploadForm(FlaskForm):
    file = FileField("Datei (CSV oder XLSX)")


class ImportApplyForm(FlaskForm):
    list_name = StringField("Zusätzlich in diesen Verteiler aufnehmen (optional, wird bei Bedarf angelegt)", validators=[Length(max=200)])


class ConfirmForm(FlaskForm):
    """A button with a CSRF token, for actions without fields."""


class CorrectionForm(FlaskForm):
    """The officer's proposed corrections ("Angaben prüfen"); prefilled with what is kept now."""

    anrede = SelectField("Anrede", choices=ANREDE_CHOICES)
    academic_title = StringField("Akademischer Titel", validators=[Length(max=50)])
    function = StringField("Funktion", validators=[Length(max=200)])
    phone = StringField("Telefon", validators=[Length(max=50)])
    authority = StringField("Behörde (Anschrift)", validators=[Length(max=200)])
    street = StringField("Straße oder Postfach", validators=[Length(max=200)])
    postcode = StringField("PLZ", validators=[Length(max=10)])
    town = StringField("Ort", validators=[Length(max=100)])
    message = TextAreaField("Nachricht an das Sekretariat (freiwillig)", validators=[Length(max=2000)])


class HandoverForm(FlaskForm):
    """"Ich bin nicht mehr zuständig": who takes over."""

    first_name = StringField("Vorname der Nachfolge", validators=[Length(max=100)])
    last_name = StringField("Nachname der Nachfolge", validators=[DataRequired(REQUIRED), Length(max=100)])
    email = EmailField("E-Mail-Adresse der Nachfolge", validators=[DataRequired(REQUIRED), Length(max=254)])
    function = StringField("Funktion der Nachfolge", validators=[Length(max=200)])
    message = TextAreaField("Nachricht an das Sekretariat (freiwillig)", validators=[Length(max=2000)])


class RejectForm(FlaskForm):
    reason = TextAreaField("Begründung (freiwillig)", validators=[Length(max=2000)])


__all__ = ["CorrectionForm", "HandoverForm", "RejectForm", "ContactForm", "OrganisationForm", "VerteilerForm", "ImportUploadForm", "ImportApplyForm", "ConfirmForm"]
