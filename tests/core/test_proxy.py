"""PROXY_COUNT: behind the README's reverse proxy, rate limits and the audit log use the client's address."""
from __future__ import annotations

import pytest
from flask import request
from sqlalchemy import select

from ki_post.auth.access import public
from ki_post.auth.models import AuditEntry
from ki_post.auth.services import create_user
from ki_post.extensions import db
from tests.helpers import PASSWORD, make_app

EMAIL = "proxy@ministerium.example"


def forwarded(address: str) -> dict[str, dict[str, str]]:
    # What the README's proxy sends; over HTTPS Flask-WTF also wants the browser's same-site Referer.
    return {"headers": {"X-Forwarded-For": address, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "post.example",
                        "Referer": "https://post.example/anmelden"}}


@pytest.mark.parametrize("proxies,client_address,limited", [
    # one trusted proxy: every forwarded address has its own login limit of 3
    (1, "203.0.113.7", [422, 422, 422, 429, 422]),
    # no proxy: the header is ignored, all requests share the limit of 127.0.0.1 (the login counted too)
    (0, "127.0.0.1", [422, 422, 429, 429, 429]),
])
def test_forwarded_address_counts_only_with_proxy_count(tmp_path, backend, proxies, client_address, limited):
    app = make_app(tmp_path, backend, PROXY_COUNT=proxies, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per minute")
    with app.app_context():
        create_user(EMAIL, "Proxy", "admin", PASSWORD)
        db.session.commit()

        client = app.test_client()
        assert client.submit("/anmelden", {"email": EMAIL, "password": PASSWORD}, **forwarded("203.0.113.7")).status_code == 302
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "anmeldung"))
        assert entry.details["ip"] == client_address

        # the same client: requests share the test's app context, and with it the CSRF token in g
        codes = [
            client.submit("/anmelden", {"email": EMAIL, "password": "falsch"}, **forwarded(address)).status_code
            for address in ["198.51.100.1"] * 4 + ["198.51.100.2"]
        ]
        assert codes == limited
        db.engine.dispose()


@pytest.mark.parametrize("proxies,seen", [
    (1, "https://post.example 203.0.113.7"),
    (0, "http://localhost 127.0.0.1"),
])
def test_proxy_count_trusts_forwarded_scheme_host_and_address(tmp_path, backend, proxies, seen):
    app = make_app(tmp_path, backend, PROXY_COUNT=proxies)
    app.add_url_rule("/wer-fragt", "who", public(lambda: f"{request.scheme}://{request.host} {request.remote_addr}"))
    with app.app_context():
        assert app.test_client().get("/wer-fragt", **forwarded("203.0.113.7")).get_data(as_text=True) == seen
        db.engine.dispose()
