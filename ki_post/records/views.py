"""Akten-Export downloads: a GET that changes nothing, for those who act on circulars and events.

The ZIP holds personal data in bulk (addresses, who was sent what, answers), so read-only accounts
(lesen) do not get it; sachbearbeitung and admin do. Archived letters to erased persons are in it only
for the administration (as on the archive pages)."""
from __future__ import annotations

import tempfile
from collections.abc import Callable

from flask import Blueprint, flash, redirect, request, send_file, url_for
from flask_login import current_user

from ..auth.access import requires_role
from ..errors import KiPostError, NotFound
from . import services
from ..letters.services import safe_filename
from .package import Package

bp = Blueprint("records", __name__)


def _download(make: Callable[[], Package], name: str, back: str):
    """The ZIP as a download; a domain error (unfinished, LibreOffice missing or failing) is said on the
    page the link was on. An unknown number stays a 404."""
    try:
        package = make()
    except NotFound:
        raise
    except KiPostError as error:
        flash(str(error), "error")
        return redirect(back)
    package.exported_by = f"{current_user.name} ({current_user.email})"
    name = f"{name}_{safe_filename(package.subject.replace('„', '').replace('“', ''), 60)}.zip"
    spool = tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024)
    package.write(spool)
    spool.seek(0)
    return send_file(spool, mimetype="application/zip", as_attachment=True, download_name=name)


@bp.get("/akten/aussendung/<int:mailing_id>.zip")
@requires_role("sachbearbeitung")
def mailing_export(mailing_id: int):
    unfinished = request.args.get("zwischenstand") == "1"
    return _download(lambda: services.mailing_package(mailing_id, unfinished=unfinished),
                     f"Akten-Export_Aussendung_{mailing_id}", url_for("outbox.mailing", mailing_id=mailing_id))


@bp.get("/akten/vorgang/<int:run_id>.zip")
@requires_role("sachbearbeitung")
def run_export(run_id: int):
    restricted = current_user.has_role("admin")
    return _download(lambda: services.run_package(run_id, include_restricted=restricted),
                     f"Akten-Export_Vorgang_{run_id}", url_for("letters.run_detail", run_id=run_id))


@bp.get("/akten/veranstaltung/<int:event_id>.zip")
@requires_role("sachbearbeitung")
def event_export(event_id: int):
    return _download(lambda: services.event_package(event_id),
                     f"Akten-Export_Veranstaltung_{event_id}", url_for("events.detail", event_id=event_id))
