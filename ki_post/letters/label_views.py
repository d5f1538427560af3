"""GET download of address labels (or window-envelope sheets) for a Verteiler; reading role suffices."""
from __future__ import annotations

from flask import Response, flash, redirect, request, url_for

from ..errors import KiPostError
from ..recipients.services import get_verteiler
from .labels import address_labels
from .blueprint import bp


@bp.get("/rundschreiben/verteiler/<int:verteiler_id>/etiketten.pdf")
def address_labels_pdf(verteiler_id: int):
    verteiler = get_verteiler(verteiler_id)
    try:
        result = address_labels(verteiler.name, request.args.get("bogen") or None)
    except KiPostError as error:
        flash(str(error), "error")
        return redirect(url_for("recipients.list_detail", verteiler_id=verteiler_id))
    name = "fensterumschlag" if result.stock.kind == "fenster" else "etiketten"
    return Response(result.pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}-verteiler-{verteiler.id}.pdf"'})
