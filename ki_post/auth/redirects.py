"""Where to go after the login: only a path of this site, judged as the browser will read it.

Werkzeug turns the ``Location`` header into a URI after the view returned (``iri_to_uri``), and
browsers drop tabs and line breaks inside URLs and read a backslash as a slash: ``/%09/evil.example``
becomes ``//evil.example``, another host. So control characters and backslashes refuse
the target outright, and what remains is checked in the very form that will be sent.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from werkzeug.urls import iri_to_uri

# C0/C1 controls (tab, CR, LF …), backslash, and the Unicode line separators; a plain space inside a
# path is harmless (it is sent as %20), a leading one fails the "starts with /" rule below.
_REFUSED = re.compile(r"[\x00-\x1f\x7f-\x9f\\\u2028\u2029]")


def safe_next(target: str | None) -> str | None:
    """``target`` as the URI the browser will get, if it is a same-site path; else None."""
    if not target or len(target) > 2000 or _REFUSED.search(target):
        return None
    try:
        uri = iri_to_uri(target)
        parts = urlsplit(uri)
    except ValueError:
        return None
    if parts.scheme or parts.netloc or not uri.startswith("/") or uri.startswith("//"):
        return None
    return uri
