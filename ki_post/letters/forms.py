from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, DateField, RadioField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from ..recipients.models import ORGANISATION_KINDS, REGIERUNGSBEZIRKE
from .services import OUTPUTS

MAIL_FORMATS = {"docx": "Brief als DOCX-Anhang (Word)", "pdf": "Brief als PDF-Anhang"}


class GermanDateField(DateField):
    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError("Bitte ein gültiges Datum angeben.") from None


class UploadForm(FlaskForm):
    name = StringField("Name der Vorlage", validators=[DataRequired("Bitte einen Namen angeben."), Length(max=100)])
    description = StringField("Beschreibung", validators=[Length(max=500)])
    file = FileField("Word-Datei (DOCX)")


class SenderForm(FlaskForm):
    ministerium = StringField("Ministerium (ausgeschrieben)", validators=[DataRequired("Bitte angeben."), Length(max=300)])
    ministerium_zeile1 = StringField("Briefkopf, Zeile 1", validators=[Length(max=200)])
    ministerium_zeile2 = StringField("Briefkopf, Zeile 2", validators=[Length(max=200)])
    ruecksendeangabe = StringField("Rücksendeangabe", validators=[Length(max=200)])
    ansprechperson = StringField("Ansprechperson", validators=[Length(max=200)])
    funktion = StringField("Funktion (Unterschrift in E-Mails)", validators=[Length(max=200)])
    organisationseinheit = StringField("Organisationseinheit (Unterschrift in E-Mails)", validators=[Length(max=200)])
    telefon = StringField("Telefon", validators=[Length(max=50)])
    telefax = StringField("Telefax", validators=[Length(max=50)])
    email = StringField("E-Mail", validators=[Length(max=254)])
    aktenzeichen = StringField("Aktenzeichen (Vorschlag)", validators=[Length(max=100)])
    dienstgebaeude = TextAreaField("Fußzeile: Dienstgebäude und Lieferanschrift", validators=[Length(max=1000)])
    kommunikation = TextAreaField("Fußzeile: Telefon, Telefax, E-Mail, Internet", validators=[Length(max=1000)])
    verkehr = TextAreaField("Fußzeile: Öffentliche Verkehrsmittel", validators=[Length(max=1000)])
    unterzeichnende = TextAreaField("Unterzeichnende", validators=[Length(max=2000)])


class ComposeForm(FlaskForm):
    version_id = SelectField("Vorlage", validate_choice=False)  # checked by services.version_from_choice (German message)
    datum = GermanDateField("Datum", validators=[Optional()])
    aktenzeichen = StringField("Aktenzeichen", validators=[Length(max=100)])
    betreff = StringField("Betreff", validators=[DataRequired("Bitte einen Betreff angeben."), Length(max=300)])
    ansprechperson = StringField("Ansprechperson", validators=[Length(max=200)])
    funktion = StringField("Funktion (Unterschrift in E-Mails)", validators=[Length(max=200)])
    organisationseinheit = StringField("Organisationseinheit (Unterschrift in E-Mails)", validators=[Length(max=200)])
    telefon = StringField("Telefon", validators=[Length(max=50)])
    telefax = StringField("Telefax", validators=[Length(max=50)])
    email = StringField("E-Mail", validators=[Length(max=254)])
    extra = TextAreaField("Zusatzfelder", validators=[Length(max=5000)])
    # Choices are checked by the services, which give German messages (WTForms' own would be English).
    verteiler_id = SelectField("Verteiler", coerce=str, validate_choice=False)
    kind = SelectField("Art der Kommune", choices=[("", "alle")] + list(ORGANISATION_KINDS.items()), validate_choice=False)
    regierungsbezirk = SelectField("Regierungsbezirk", choices=[("", "alle")] + [(r, r) for r in REGIERUNGSBEZIRKE], validate_choice=False)
    contact_ids = SelectMultipleField("Einzelne Kontakte", coerce=str, validate_choice=False)
    output = RadioField("Ergebnis", choices=list(OUTPUTS.items()), default="zip", validate_choice=False)
    # For "Als Aussendung vorbereiten": the letter travels as an attachment in this format.
    attachment_format = RadioField("Format des Anhangs", choices=list(MAIL_FORMATS.items()), default="docx", validate_choice=False)
    # Nothing is produced while placeholders would stay empty, unless the user says so here.
    leere_bestaetigt = BooleanField("Leere Platzhalter bestätigen: Zusatzfelder ohne Wert und unbekannte Platzhalter "
                                    "bleiben in den Briefen leer")
    # Shown once some recipients' letters cannot be made: produce the others anyway.
    ohne_problemfaelle = BooleanField("Briefe ohne die genannten Empfängerinnen und Empfänger erstellen")
