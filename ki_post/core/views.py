import click
from flask import Blueprint, jsonify, render_template
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from ..auth.access import public
from ..extensions import db

bp = Blueprint("core", __name__)


DASHBOARD_ROWS = 5


@bp.get("/")
def index():
    from ..db_types import utcnow
    from ..events.models import Event
    from ..events.services import unmatched_replies
    from ..outbox.models import Mailing
    from ..outbox.services import counts_by_mailing, mailing_counts
    from ..recipients.models import Contact, Organisation, Verteiler

    counts = {
        "contacts": db.session.scalar(select(func.count(Contact.id)).where(Contact.active.is_(True))),
        "organisations": db.session.scalar(select(func.count(Organisation.id))),
        "verteiler": db.session.scalar(select(func.count(Verteiler.id))),
    }
    mailings = db.session.scalars(select(Mailing).order_by(Mailing.id.desc()).limit(DASHBOARD_ROWS)).all()
    upcoming = db.session.scalars(
        select(Event).where(Event.end_at >= utcnow(), Event.state != "cancelled").order_by(Event.start_at).limit(DASHBOARD_ROWS)
    ).all()
    recent_events = [] if upcoming else db.session.scalars(
        select(Event).order_by(Event.start_at.desc()).limit(DASHBOARD_ROWS)
    ).all()
    return render_template(
        "core/index.html",
        counts=counts,
        mailings=mailings,
        mailing_states=counts_by_mailing([m.id for m in mailings]),
        outbox=mailing_counts(),
        upcoming=upcoming,
        recent_events=recent_events,
        unmatched=len(unmatched_replies()),
    )


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
        f"{created['contacts']} Ansprechpersonen, {created['verteiler']} Verteiler, "
        f"{created.get('letter_templates', 0)} Briefvorlagen, {created.get('events', 0)} Veranstaltungen, "
        f"{created.get('invitations', 0)} Einladungen neu angelegt."
    )
