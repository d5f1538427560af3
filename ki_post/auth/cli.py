import click
from sqlalchemy import select

from ..extensions import db
from ..transaction import cli_transaction
from .models import ROLES, User
from .services import create_user


@click.group("users")
def users() -> None:
    """Konten der Mitarbeitenden verwalten."""


@users.command("create")
@click.option("--email", required=True, help="E-Mail-Adresse (Anmeldename).")
@click.option("--role", type=click.Choice(ROLES), required=True, help="Rolle des Kontos.")
@click.option("--name", default="", help="Anzeigename; Standard: Teil der E-Mail-Adresse vor dem @.")
@click.password_option("--password", envvar="KI_POST_NEW_PASSWORD", help="Passwort (sonst Abfrage; oder Umgebungsvariable KI_POST_NEW_PASSWORD).")
def create(email: str, role: str, name: str, password: str) -> None:
    """Ein Konto anlegen."""
    with cli_transaction():
        user = create_user(email, name or email.split("@")[0], role, password)
    click.echo(f"Konto {user.email} ({user.role}) angelegt.")


@users.command("list")
def list_users() -> None:
    """Alle Konten auflisten."""
    for user in db.session.scalars(select(User).order_by(User.email)):
        state = "aktiv" if user.active else "gesperrt"
        click.echo(f"{user.email}\t{user.role}\t{state}\t{user.name}")


commands = [users]
