"""flask --app app letters labels [--list NAME] OUT.pdf: address labels or window-envelope sheets."""
from __future__ import annotations

from pathlib import Path

import click

from ..formatting import anzahl
from ..transaction import cli_transaction
from .labels import DEFAULT_STOCK, label_stocks

_STOCK_HELP = "Bogen: " + "; ".join(f"{stock.name} = {stock.title}" for stock in label_stocks()) + "."


@click.command("labels")
@click.argument("path", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option("--list", "list_name", default=None, help="Verteiler; ohne Angabe alle aktiven Kontakte.")
@click.option("--stock", "stock_name", type=click.Choice([stock.name for stock in label_stocks()]), default=DEFAULT_STOCK,
              show_default=True, help=_STOCK_HELP)
def labels(path: Path, list_name: str | None, stock_name: str) -> None:
    """Adressetiketten (oder mit --stock fensterumschlag-din-lang je Kontakt ein Anschriftenblatt für den
    Fensterumschlag) als PDF; die Anschrift ist dieselbe wie im Brief. Braucht LibreOffice."""
    from .labels import address_labels

    with cli_transaction():
        result = address_labels(list_name, stock_name)
    path.write_bytes(result.pdf)
    what = ("Anschriftenblatt", "Anschriftenblätter") if result.stock.kind == "fenster" else ("Etikett", "Etiketten")
    click.echo(f"{anzahl(result.count, *what)} nach {path} geschrieben.")
    for name in result.without_address:
        click.echo(f"Ohne Postanschrift, kein Etikett: {name}", err=True)
