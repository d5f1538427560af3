import click
from flask import Blueprint, jsonify, render_template
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from ..auth.access import public
from ..extensions import db

bp = Blueprint("core", __name__)


@bp.get("/")
def index():
    from ..recipients.models import Contact, Organisation, Verteiler

    counts = {
        "contacts": db.session.scalar(select(func.count(Contact.id)).where(Contact.active.is_(True))),
        "organisations": db.session.scalar(select(func.count(Organisation.id))),
        "verteiler": db.session.scalar(select(func.count(Verteiler.id))),
    }
    return render_template("core/index.html", counts=counts)


@bp.get("/healthz")
@public
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return jsonify(status="fehler", database="nicht erreichbar"), 503
    return jsonify(status="ok", database="ok")


@bp.get("/barrierefreiheit")
@public
def accessibility():
    return render_template("core/accessibility.html")


@bp.get("/datenschutz")
@public
def privacy():
    return render_template("core/privacy.html")


@click.command("demo-data")
def demo_data_command() -> None:
    """Beispieldaten laden: 53 Kommunen, fiktive Ansprechpersonen, Verteiler (wiederholbar)."""
    from ..demo import load_demo_data

    created = load_demo_data()
    db.session.commit()
    click.echo(
        f"Beispieldaten geladen: {created['organisations']} Organisationen, "
        f"{created['contacts']} Ansprechpersonen, {created['verteiler']} Verteiler neu angelegt."
    )
