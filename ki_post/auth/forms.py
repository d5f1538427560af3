from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

from .models import Role

REQUIRED = "Bitte ausfüllen."
ROLE_CHOICES = Role.choices()


class LoginForm(FlaskForm):
    email = EmailField("E-Mail-Adresse", validators=[DataRequired(REQUIRED)])
    password = PasswordField("Passwort", validators=[DataRequired(REQUIRED)])


class _NewPasswordMixin:
    password = PasswordField("Passwort (mindestens 10 Zeichen, schwer zu erraten, z. B. drei Wörter mit Bindestrichen)", validators=[DataRequired(REQUIRED), Length(min=10, message="Mindestens 10 Zeichen.")])
    password_repeat = PasswordField(
        "Passwort wiederholen",
        validators=[DataRequired(REQUIRED), EqualTo("password", message="Die Passwörter stimmen nicht überein.")],
    )


class FirstRunForm(_NewPasswordMixin, FlaskForm):
    name = StringField("Ihr Name", validators=[DataRequired(REQUIRED), Length(max=200)])
    email = EmailField("E-Mail-Adresse", validators=[DataRequired(REQUIRED), Email("Bitte eine gültige E-Mail-Adresse angeben.")])
    load_demo = BooleanField("Beispieldaten laden (53 Kommunen mit fiktiven Ansprechpersonen)", default=True)


class UserCreateForm(_NewPasswordMixin, FlaskForm):
    name = StringField("Name", validators=[DataRequired(REQUIRED), Length(max=200)])
    email = EmailField("E-Mail-Adresse", validators=[DataRequired(REQUIRED), Email("Bitte eine gültige E-Mail-Adresse angeben.")])
    role = SelectField("Rolle", choices=ROLE_CHOICES, default="sachbearbeitung")


class UserEditForm(FlaskForm):
    role = SelectField("Rolle", choices=ROLE_CHOICES)
    active = BooleanField("Konto aktiv")
    password = PasswordField("Neues Passwort (leer lassen, um es nicht zu ändern)", validators=[Optional(), Length(min=10, message="Mindestens 10 Zeichen.")])
