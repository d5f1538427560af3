"""Inline CSS for the HTML part of every mail.

Many mail programs drop ``<style>`` blocks and external stylesheets, so each element carries its own
``style``. The rules are added here, after rendering, to the bare tags of templates/mail/*.html, so a
template stays plain HTML and a new one is styled too. Recipient data is already escaped at this point
(``<`` is ``&lt;``), so only the template's own tags match.

Dark mode: no colour is set without its background on the same box (the frame in _layout.html sets
both), so a program that darkens the background also lightens the text; nothing assumes a white page.
"""
from __future__ import annotations

import re

STYLES = {
    "h1": "font-size:22px;line-height:1.3;font-weight:bold;margin:0 0 16px 0;",
    "h2": "font-size:18px;line-height:1.3;font-weight:bold;margin:20px 0 8px 0;",
    "p": "margin:0 0 12px 0;",
    "ul": "margin:0 0 12px 0;padding:0 0 0 24px;",
    "li": "margin:0 0 4px 0;",
    "table": "border-collapse:collapse;width:100%;max-width:600px;margin:8px 0 16px 0;",
    "caption": "text-align:left;font-weight:bold;padding:0 0 4px 0;",
    "th": "text-align:left;vertical-align:top;font-weight:bold;padding:6px 12px 6px 0;border-bottom:1px solid #767676;",
    "td": "text-align:left;vertical-align:top;padding:6px 0;border-bottom:1px solid #767676;",
    "a": "color:#00567a;background-color:#ffffff;text-decoration:underline;",
}
_BARE_TAG = re.compile(r"<(" + "|".join(STYLES) + r")((?:\s(?![^>]*\bstyle=)[^>]*)?)>")


def inline_styles(html: str) -> str:
    """Give every bare tag of a kind in STYLES its style (a tag with its own ``style`` keeps it)."""
    return _BARE_TAG.sub(lambda match: f'<{match.group(1)}{match.group(2)} style="{STYLES[match.group(1)]}">', html)
