"""How guessable a new password is, estimated with zxcvbn (Dropbox's estimator; Python port, MIT).

zxcvbn knows the most frequent passwords of leaked lists (German ones such as „passwort“, „hallo“,
„geheim“, „qwertz“ and „fussball“ among them), words, names, sequences, repeats, keyboard rows,
dates and l33t spellings. We add the account's own e-mail address and name and the application's
name. A password must need about 10^8 guesses or more (zxcvbn score 3 of 4): enough against
guessing through the login, which is throttled per address and per account, and it makes an offline
attack on a stolen password hash slow.
"""
from __future__ import annotations

import re
import threading

from flask import current_app, has_app_context
from zxcvbn import zxcvbn

MIN_SCORE = 3
# zxcvbn refuses longer input (its matching grows quadratically); a longer passphrase is judged by
# its beginning, which is then already long.
_ESTIMATE_LENGTH = 72
# zxcvbn keeps the extra words in a module-wide dictionary while it estimates: one at a time.
_lock = threading.Lock()
_BASE_HINTS = ("ki-post", "kipost", "ministerium", "integration", "integrationszentrum", "verteiler")


def _hints(personal: tuple[str, ...]) -> list[str]:
    # zxcvbn ranks earlier words as likelier: the account's own words first.
    hints: list[str] = []
    for text in personal:
        if text:
            hints.extend([text, text.split("@")[0]])
            hints.extend(part for part in re.split(r"[\s@.+_\-]+", text) if len(part) >= 3)
    hints.extend(_BASE_HINTS)
    if has_app_context():
        hints.append(current_app.config.get("APP_NAME", ""))
    return [hint.lower() for hint in hints if hint]


def password_guessable(password: str, *personal: str) -> bool:
    """True when ``password`` is too easy to guess; ``personal``: the account's e-mail address, name."""
    with _lock:
        result = zxcvbn(password[:_ESTIMATE_LENGTH], user_inputs=_hints(personal))
    return result["score"] < MIN_SCORE
