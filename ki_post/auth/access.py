"""Access rules: every view needs a login unless marked public.

Without an explicit role, reading (GET/HEAD) needs ``lesen`` and every change needs
``sachbearbeitung``, so a new view is never writable by read-only accounts by accident.
"""
from __future__ import annotations

from typing import Callable, TypeVar

from flask import abort, current_app, redirect, request, url_for
from flask_login import current_user

View = TypeVar("View", bound=Callable)


def public(view: View) -> View:
    view._public = True  # type: ignore[attr-defined]
    return view


def requires_role(role: str) -> Callable[[View], View]:
    def mark(view: View) -> View:
        view._min_role = role  # type: ignore[attr-defined]
        return view

    return mark


def is_public_endpoint(endpoint: str | None) -> bool:
    if endpoint is None or endpoint == "static":
        return True
    view = current_app.view_functions.get(endpoint)
    return bool(getattr(view, "_public", False))


def required_role(endpoint: str, method: str) -> str:
    view = current_app.view_functions[endpoint]
    explicit = getattr(view, "_min_role", None)
    if explicit:
        return explicit
    return "lesen" if method in ("GET", "HEAD", "OPTIONS") else "sachbearbeitung"


def enforce_access():
    """before_request hook."""
    if is_public_endpoint(request.endpoint):
        return None
    if not current_user.is_authenticated:
        from ..auth.services import has_any_user

        if not has_any_user():
            return redirect(url_for("core.first_run"))
        return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))
    if not current_user.has_role(required_role(request.endpoint, request.method)):
        abort(403)
    return None
