from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user

from .. import settings
from ..auth.access import requires_role
from ..letters import services as letters
from ..transaction import transaction
from . import services
from .forms import SettingsForm

bp = Blueprint("admin", __name__)


def _form() -> SettingsForm:
    form = SettingsForm(data=services.current_values())
    for name in services.fixed_fields():
        getattr(form, name).render_kw = {"disabled": True}
    return form


def _page(form: SettingsForm, check: dict | None = None, status: int = 200):
    return render_template("admin/settings.html", form=form, fixed=services.fixed_fields(),
                           passwords=services.password_state(), signature=letters.signature_lines(),
                           sender_missing=settings.sender_missing(), check=check), status


@bp.route("/verwaltung/einstellungen", methods=["GET", "POST"])
@requires_role("admin")
def settings_page():
    form = _form()
    if form.validate_on_submit():
        with transaction(form) as done:
            changed = services.save(form.data, user=current_user.email)
        if done.ok:
            settings.refresh(force=True)  # this process at once; the others within SETTINGS_REFRESH_SECONDS
            flash("Die Einstellungen wurden gespeichert." if changed else "Die Einstellungen wurden gespeichert "
                  "(Absenderangaben geprüft, keine weitere Änderung).", "success")
            return redirect(url_for("admin.settings_page"))
    return _page(form, status=200 if not form.errors and not form.form_errors else 422)


@bp.post("/verwaltung/einstellungen/smtp-pruefen")
@requires_role("admin")
def check_smtp():
    return _check("smtp")


@bp.post("/verwaltung/einstellungen/imap-pruefen")
@requires_role("admin")
def check_imap():
    return _check("imap")


def _check(kind: str):
    """Try a connection with the entered values; nothing is saved, the form keeps what was typed."""
    form = _form()
    if not form.validate_on_submit():
        return _page(form, status=422)
    with transaction(form) as done:
        ok, steps = (services.check_smtp_connection if kind == "smtp" else services.check_imap_connection)(form.data)
    if not done.ok:
        return _page(form, status=422)
    return _page(form, check={"kind": kind, "ok": ok, "steps": steps})
