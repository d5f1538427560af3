import click
from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, url_for
from sqlalchemy import func, select

from .. import health
from ..auth.access import public
from ..auth.forms import FirstRunForm
from ..auth.services import create_user, has_any_user
from ..auth.sessions import sign_in
from ..demo import load_demo_data
from ..extensions import db
from ..transaction import transaction

bp = Blueprint("core", __name__)


DASHBOARD_ROWS = 5


@bp.get("/")
def index():
    from ..db_types import utcnow
    from ..events.models import Event
    from ..events.services import answer_counts, unmatched_replies
    from ..outbox.models import Mailing, OutboxMessage
    from ..outbox.services import counts_by_mailing, mailing_counts
    from ..recipients.models import Contact, Organisation, Verteiler
    from ..recipients import freshness
    from ..recipients.selfservice import pending_count

    counts = {
        "contacts": db.session.scalar(select(func.count(Contact.id)).where(Contact.active.is_(True))),
        "organisations": db.session.scalar(select(func.count(Organisation.id))),
        "verteiler": db.session.scalar(select(func.count(Verteiler.id))),
    }
    mailings = db.session.scalars(select(Mailing).order_by(Mailing.id.desc()).limit(DASHBOARD_ROWS)).all()
    # Running: released or paused, with something still to go out or to decide (messages in doubt).
    open_work = select(OutboxMessage.id).where(OutboxMessage.mailing_id == Mailing.id,
                                               OutboxMessage.state.in_(("wartend", "in_arbeit", "unklar")))
    running = db.session.scalars(
        select(Mailing).where(Mailing.state.in_(("aktiv", "pausiert")), open_work.exists())
        .order_by(Mailing.id.desc()).limit(DASHBOARD_ROWS)
    ).all()
    upcoming = db.session.scalars(
        select(Event).where(Event.end_at >= utcnow(), Event.state != "abgesagt").order_by(Event.start_at).limit(DASHBOARD_ROWS)
    ).all()
    recent_events = [] if upcoming else db.session.scalars(
        select(Event).order_by(Event.start_at.desc()).limit(DASHBOARD_ROWS)
    ).all()
    shown_events = list(upcoming or recent_events)
    return render_template(
        "core/index.html",
        counts=counts,
        mailings=mailings,
        running=running,
        mailing_states=counts_by_mailing(list(dict.fromkeys([m.id for m in mailings] + [m.id for m in running]))),
        outbox=mailing_counts(),
        upcoming=upcoming,
        recent_events=recent_events,
        answers=answer_counts([event.id for event in shown_events]),
        unmatched=len(unmatched_replies()),
        freshness=freshness.counts(),
        proposals=pending_count(),
    )


@bp.get("/healthz")
@public
def healthz():
    """200 only when KI-Post can work: the database answers and takes writes, and the local storage
    it writes to (SQLite folder, .eml folder) is writable with room left. Otherwise 503 and why."""
    problem = health.check(current_app)
    if problem is None:
        return jsonify(status="ok", database="ok")
    answer = {"status": "fehler", "database": "ok", problem.what: problem.kind, "meldung": problem.message}
    return jsonify(answer), 503


@bp.get("/barrierefreiheit")
@public
def accessibility():
    return render_template("core/accessibility.html")


@bp.get("/datenschutz")
@public
def privacy():
    return render_template("core/privacy.html")


@bp.route("/einrichtung", methods=["GET", "POST"])
@public
def first_run():
    """The installation's first page: the administration account, optionally with the demo data."""
    if has_any_user():
        abort(404)
    form = FirstRunForm()
    if form.validate_on_submit():
        with transaction(form) as done:
            user = create_user(form.email.data, form.name.data, "admin", form.password.data)
            if form.load_demo.data:
                load_demo_data()
            sign_in(user)
        if done.ok:
            flash("Das Administrationskonto ist angelegt. Willkommen bei KI-Post!", "success")
            return redirect(url_for("core.index"))
    return render_template("auth/first_run.html", form=form)


@click.command("demo-data")
def demo_data_command() -> None:
    """Beispieldaten laden: 53 Kommunen, fiktive Ansprechpersonen, Verteiler (wiederholbar)."""
    created = load_demo_data()
    db.session.commit()
    click.echo(
        f"Beispieldaten geladen: {created['organisations']} Organisationen, "
        f"{created['contacts']} Ansprechpersonen, {created['verteiler']} Verteiler, "
        f"{created.get('letter_templates', 0)} Briefvorlagen, {created.get('events', 0)} Veranstaltungen, "
        f"{created.get('invitations', 0)} Einladungen neu angelegt."
    )
