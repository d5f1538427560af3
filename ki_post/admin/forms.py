from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, NumberRange, Optional

SMTP_SECURITY = {"starttls": "STARTTLS (meist Port 587)", "ssl": "SSL/TLS von Anfang an (meist Port 465)",
                 "none": "keine Verschlüsselung (nur im eigenen Netz, meist Port 25)"}
IMAP_SECURITY = {"ssl": "SSL/TLS (meist Port 993)", "none": "keine Verschlüsselung (meist Port 143)"}
PORT = [Optional(), NumberRange(min=1, max=65535, message="Bitte eine Portnummer zwischen 1 und 65535 angeben.")]


class GermanIntegerField(IntegerField):
    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError("Bitte eine ganze Zahl angeben.") from None


class SettingsForm(FlaskForm):
    # Sender identity: the sender profile that letters, mails and the answer page share.
    ansprechperson = StringField("Name der Ansprechperson", validators=[Length(max=200)])
    funktion = StringField("Funktion", validators=[Length(max=200)])
    organisationseinheit = StringField("Organisationseinheit", validators=[Length(max=200)])
    ministerium = StringField("Ministerium (ausgeschrieben)", validators=[Length(max=300)])
    dienstgebaeude = TextAreaField("Anschrift", validators=[Length(max=1000)])
    telefon = StringField("Telefon", validators=[Length(max=50)])
    email = StringField("E-Mail-Adresse der Ansprechperson", validators=[Length(max=254)])
    # Mail sender: the functional mailbox (MAIL_DEFAULT_SENDER), also ORGANIZER of calendar invitations.
    sender_name = StringField("Absendername", validators=[Length(max=200)])
    sender_address = StringField("Absenderadresse (Funktionspostfach)", validators=[Length(max=254)])
    reply_to = StringField("Antwortadresse (Reply-To)", validators=[Length(max=254)])
    rate_per_minute = GermanIntegerField("Nachrichten je Minute", validators=[
        Optional(), NumberRange(min=0, max=100000, message="Bitte 0 (unbegrenzt) oder eine Zahl bis 100.000 angeben.")])
    daily_cap = GermanIntegerField("Nachrichten je Tag höchstens", validators=[
        Optional(), NumberRange(min=0, max=10000000, message="Bitte 0 (unbegrenzt) oder eine positive Zahl angeben.")])
    mail_server = StringField("SMTP-Server", validators=[Length(max=253)])
    mail_port = GermanIntegerField("SMTP-Port", validators=PORT)
    mail_security = SelectField("Verschlüsselung", choices=list(SMTP_SECURITY.items()), validate_choice=False)
    mail_username = StringField("Benutzername", validators=[Length(max=254)])
    mail_password = PasswordField("Passwort", validators=[Length(max=500)])
    mail_password_clear = BooleanField("Gespeichertes SMTP-Passwort löschen")
    imap_server = StringField("IMAP-Server", validators=[Length(max=253)])
    imap_port = GermanIntegerField("IMAP-Port", validators=PORT)
    imap_security = SelectField("Verschlüsselung", choices=list(IMAP_SECURITY.items()), validate_choice=False)
    imap_username = StringField("Benutzername", validators=[Length(max=254)])
    imap_password = PasswordField("Passwort", validators=[Length(max=500)])
    imap_password_clear = BooleanField("Gespeichertes IMAP-Passwort löschen")
    imap_folder = StringField("Ordner mit den Antworten", validators=[Length(max=200)])
