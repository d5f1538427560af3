from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload


from ..extensions import db, limiter
from ..transaction import get_or_404, transaction
from . import audit_text
from .access import public, requires_role
from .forms import LoginForm, UserCreateForm, UserEditForm
from .models import AuditEntry, User
from .redirects import safe_next
from .services import audit, authenticate, create_user, has_any_user, normalise_login, update_user
from .sessions import current_secret, sign_in, sign_out

bp = Blueprint("auth", __name__)


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _account_limit() -> str:
    return current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"]


def _account_key() -> str:
    # The address as authenticate() looks it up: spelling variants count against the same account.
    return "anmeldung:" + normalise_login(request.form.get("email", ""))[:254]


def _failed_login(response) -> bool:
    return response.status_code == 422


def _throttled_message() -> str:
    # One text for both limits, so the answer never tells whether an address has an account.
    return "Zu viele Anmeldeversuche. Bitte warten Sie einige Minuten und versuchen Sie es dann erneut."


@bp.route("/anmelden", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], error_message=_throttled_message)
@limiter.limit(_account_limit, methods=["POST"], key_func=_account_key, deduct_when=_failed_login,
               error_message=_throttled_message)
@public
def login():
    if not has_any_user():
        return redirect(url_for("core.first_run"))
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.email.data, form.password.data)
        if user is None:
            form.form_errors.append("E-Mail-Adresse oder Passwort ist falsch.")
        else:
            sign_in(user)
            audit("anmeldung", user)
            db.session.commit()
            return redirect(safe_next(request.args.get("next")) or url_for("core.index"))
    return render_template("auth/login.html", form=form), 200 if not form.errors and not form.form_errors else 422
@bp.post("/abmelden")
@requires_role("lesen")  # every role may end its own session
def logout():
    sign_out()
    db.session.commit()
    flash("Sie sind abgemeldet.", "success")
    return redirect(url_for("auth.login"))


@bp.get("/verwaltung/konten")
@requires_role("admin")
def users():
    accounts = db.session.scalars(select(User).order_by(User.name)).all()
    return render_template("auth/users.html", users=accounts)


@bp.route("/verwaltung/konten/neu", methods=["GET", "POST"])
@requires_role("admin")
def user_new():
    form = UserCreateForm()
    if form.validate_on_submit():
        with transaction(form) as done:
            create_user(form.email.data, form.name.data, form.role.data, form.password.data)
        if done.ok:
            flash("Das Konto ist angelegt.", "success")
            return redirect(url_for("auth.users"))
    return render_template("auth/user_form.html", form=form, user=None)


@bp.route("/verwaltung/konten/<int:user_id>", methods=["GET", "POST"])
@requires_role("admin")
def user_edit(user_id: int):
    user = get_or_404(User, user_id, "Konto")
    form = UserEditForm(obj=user)
    if form.validate_on_submit():
        with transaction(form) as done:
            update_user(user, role=form.role.data, active=form.active.data, password=form.password.data or "",
                        keep_session=current_secret() if user.id == current_user.id else None)
        if done.ok:
            flash("Das Konto ist gespeichert.", "success")
            return redirect(url_for("auth.users"))
    return render_template("auth/user_form.html", form=form, user=user)


@bp.get("/verwaltung/protokoll")
@requires_role("admin")
def audit_log():
    page = db.paginate(select(AuditEntry).options(selectinload(AuditEntry.user)).order_by(AuditEntry.id.desc()),
                       per_page=50, error_out=False)
    return render_template("auth/audit_log.html", page=page, sentences=audit_text.sentences(page.items))


@bp.app_context_processor
def _inject_user():
    return {"current_user": current_user}
