"""E-mail addresses as they are stored: every spelling of an internationalised domain, and the placeholder
an anonymised person's address becomes. Used wherever a copy of an address must be found (erasure,
bounces, calendar replies, duplicates)."""
from __future__ import annotations

from collections.abc import Callable, Iterable

import idna

ANONYMISED_NAME = "Anonymisiert"
ANONYMISED_DOMAIN = "anonymisiert.invalid"
ANONYMISED_ADDRESS = f"anonymisiert@{ANONYMISED_DOMAIN}"


# An internationalised domain reaches the database in several spellings: Unicode (the Verteiler),
# IDNA 2008 (email-validator, the idna package) and IDNA 2003 (Python's codec, which the outbox uses;
# it turns "ß" into "ss"). A copy must be found under any of them.
_DOMAIN_SPELLINGS: tuple[Callable[[str], str], ...] = (
    lambda domain: domain.encode("idna").decode("ascii"),
    lambda domain: domain.encode("ascii").decode("idna"),
    lambda domain: idna.encode(domain, uts46=True).decode("ascii"),
    lambda domain: idna.decode(domain),
)


def address_forms(addresses: Iterable[str | None]) -> set[str]:
    """Lower-case forms of each address with its domain in every spelling (see above), so a copy is
    found however it was written down (SQL compares them with ``lower(column)``)."""
    forms: set[str] = set()
    for raw in addresses:
        address = (raw or "").strip().lower()
        if "@" not in address or address.endswith(f"@{ANONYMISED_DOMAIN}"):
            continue
        local, _, domain = address.rpartition("@")
        domains = {domain}
        for _round in range(2):  # xn--… → Unicode → the other xn--… spelling
            for known in list(domains):
                for spelling in _DOMAIN_SPELLINGS:
                    try:
                        domains.add(spelling(known).lower())
                    except (UnicodeError, idna.IDNAError):
                        pass  # not representable in this spelling: the others are all there is
        forms.update(f"{local}@{known}" for known in domains)
    return forms
