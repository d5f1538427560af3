"""What every page shares: access rules, error pages, date formats, the start page, /healthz."""
from __future__ import annotations

import logging

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from .. import formatting, health
from ..auth.access import enforce_access
from ..auth.sessions import load_user, resolve_request_user
from ..errors import NotFound
from ..extensions import db, login_manager

log = logging.getLogger(__name__)

ERROR_TEXTS = {
    400: ("Ungültige Anfrage", "Die Anfrage konnte nicht verarbeitet werden. Bitte laden Sie die Seite neu und versuchen Sie es noch einmal."),
    403: ("Keine Berechtigung", "Ihr Konto hat für diese Seite keine Berechtigung. Wenden Sie sich bei Bedarf an die Administration."),
    404: ("Seite nicht gefunden", "Diese Seite gibt es nicht. Bitte prüfen Sie die Adresse."),
    405: ("Nicht erlaubt", "Diese Aktion ist auf diesem Weg nicht möglich."),
    413: ("Datei zu groß", "Die hochgeladene Datei ist zu groß."),
    429: ("Zu viele Anfragen", "Bitte warten Sie einen Moment und versuchen Sie es dann erneut."),
    500: ("Interner Fehler", "Es ist ein unerwarteter Fehler aufgetreten. Ihre Eingaben wurden nicht gespeichert. Bitte versuchen Sie es erneut oder wenden Sie sich an die IT."),
    503: ("Dienst nicht verfügbar", "Die Datenbank ist zurzeit nicht erreichbar. Bitte versuchen Sie es in einigen Minuten erneut."),
}


def register_core(app: Flask) -> None:
    from . import audit_names, charts, views

    login_manager.login_view = "auth.login"
    login_manager.login_message = "Bitte melden Sie sich an."
    login_manager.session_protection = "strong"
    login_manager.user_loader(load_user)

    app.before_request(resolve_request_user)  # first: the access check needs the user
    app.before_request(enforce_access)
    app.register_blueprint(views.bp)
    formatting.register(app)
    charts.register(app)
    audit_names.register()
    _register_error_pages(app)
    app.after_request(_security_headers)
    app.context_processor(lambda: {"nav_items": _nav_items, "may": _may})
    app.cli.add_command(views.demo_data_command)


NAV = (
    ("core.index", "Start", "lesen"),
    ("recipients.contacts", "Verteiler", "lesen"),
    ("letters.index", "Rundschreiben", "lesen"),
    ("events.index", "Veranstaltungen", "lesen"),
    ("outbox.index", "Postausgang", "lesen"),
    ("auth.users", "Verwaltung", "admin"),
)


def _nav_items() -> list[tuple[str, str]]:
    from flask import current_app
    from flask_login import current_user

    return [
        (endpoint, label)
        for endpoint, label, role in NAV
        if endpoint in current_app.view_functions and current_user.is_authenticated and current_user.has_role(role)
    ]


def _may(role: str) -> bool:
    """``{% if may('sachbearbeitung') %}``: show a control only to whom its route would not answer 403."""
    from flask_login import current_user

    return bool(current_user.is_authenticated and current_user.has_role(role))


def error_page(code: int, detail: str | None = None):
    title, text = ERROR_TEXTS.get(code, ERROR_TEXTS[500])
    return render_template("errors/error.html", code=code, title=title, text=detail or text), code


def _register_error_pages(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return error_page(400, "Das Formular ist abgelaufen oder unvollständig (Sicherheitsprüfung fehlgeschlagen). Bitte laden Sie die Seite neu und senden Sie es erneut.")

    @app.errorhandler(NotFound)
    def domain_not_found(error: NotFound):
        # Services raise NotFound for unknown ids and tokens; every page answers it the same way.
        db.session.rollback()
        return error_page(404)

    @app.errorhandler(413)
    def too_large(error):
        limit_mb = app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
        return error_page(413, f"Die Datei ist größer als {limit_mb} MB. Bitte teilen Sie sie auf oder wenden Sie sich an die Administration.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code == 429 and error.description:
            return error_page(429, str(error.description))
        return error_page(error.code or 500)

    @app.errorhandler(DBAPIError)
    def database_error(error: DBAPIError):
        # Say what it is (unreachable, read-only, full disk), on the page and in the log alike.
        problem = health.explain(app, error)
        try:
            db.session.rollback()
        except DBAPIError:
            pass  # the connection is gone; the pool replaces it
        if problem is None:
            log.exception("Unerwarteter Datenbankfehler bei %s", request.path)
            return error_page(500)
        log.error("Datenbankfehler bei %s: %s (%s)", request.path, problem.kind, error.orig)
        health.note(app, problem)
        return error_page(503, problem.message)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("Unerwarteter Fehler bei %s", request.path)
        db.session.rollback()
        return error_page(500)


def _security_headers(response):
    # Nearly every page holds personal data (contacts, answers, previews, exports, downloads), and a
    # list of exceptions would miss the next one: nothing but the static assets may be kept by the
    # browser or a proxy.
    if request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    )
    return response
