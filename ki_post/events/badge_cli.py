"""flask --app app events badges EVENT OUT.pdf [--stock NAME]: name badges or table cards as PDF."""
from __future__ import annotations

from pathlib import Path

import click

from ..formatting import anzahl
from ..transaction import cli_transaction
from .badges import DEFAULT_STOCK, badge_stocks

_STOCK_HELP = "Bogen: " + "; ".join(f"{stock.name} = {stock.title}" for stock in badge_stocks()) + "."


@click.command("badges")
@click.argument("event_id", type=int)
@click.argument("path", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option("--stock", "stock_name", type=click.Choice([stock.name for stock in badge_stocks()]), default=DEFAULT_STOCK,
              show_default=True, help=_STOCK_HELP)
@click.option("--qr", is_flag=True, help="mit dem persönlichen Einlass-QR-Code (wie in der Bestätigungsmail)")
@click.option("--no-event-title", is_flag=True, help="Namensschilder ohne den Titel der Veranstaltung in der Fußzeile")
def badges(event_id: int, path: Path, stock_name: str, qr: bool, no_event_title: bool) -> None:
    """Namensschilder (oder mit --stock tischkarte-a6 Tischkarten) für alle, die zugesagt haben, als PDF;
    je Begleitperson ein Schild mit Schreiblinie und „Begleitung von …“. Namensschilder haben einen
    hellgrauen Schneiderahmen und unten den Titel der Veranstaltung; Tischkarten tragen den Text auf
    beiden Seiten des Zelts (Rückseite um 180° gedreht) mit Falzlinie. Braucht LibreOffice."""
    from .attendance import checkin_link
    from .badges import badges_pdf
    from .services import get_event

    with cli_transaction():
        data, count = badges_pdf(get_event(event_id), stock_name, qr_content=checkin_link if qr else None,
                                  event_title=not no_event_title)
    path.write_bytes(data)
    what = ("Tischkarte", "Tischkarten") if stock_name.startswith("tischkarte") else ("Namensschild", "Namensschilder")
    click.echo(f"{anzahl(count, *what)} nach {path} geschrieben.")
