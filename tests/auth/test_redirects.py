"""After the login the browser goes only to a path of this site, judged as a browser reads the URL.

The oracle is an independent URL parser: Node's WHATWG ``URL`` (the algorithm browsers implement),
fed with the ``Location`` header exactly as Werkzeug sends it.
"""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder
from werkzeug.utils import redirect

from ki_post.auth.redirects import safe_next
from tests.helpers import PASSWORD

ORIGIN = "http://127.0.0.1:5000"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node fehlt (apt-get install nodejs): WHATWG-URL-Parser als Orakel")


def browser_origins(locations: list[str]) -> list[str]:
    """The origin a browser on ORIGIN/anmelden navigates to for each Location header value."""
    script = (
        "const locations = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        f"console.log(JSON.stringify(locations.map(l => {{ try {{ return new URL(l, '{ORIGIN}/anmelden').origin }}"
        " catch (e) { return 'ungueltig' } })));"
    )
    result = subprocess.run([NODE, "-e", script], input=json.dumps(locations), capture_output=True, text=True, check=True, timeout=60)
    return json.loads(result.stdout)


def sent_location(target: str) -> str:
    """The Location header Werkzeug puts on the wire for a redirect to ``target``."""
    environ = EnvironBuilder(base_url=ORIGIN).get_environ()
    return dict(redirect(target).get_wsgi_headers(environ))["Location"]


ATTACKS = [
    "/%09/evil.example",        # the issue's case: Werkzeug and browsers drop the tab → //evil.example
    "/%0D%0A/x",                # the issue's 500: a line break in a header
    "/%0A/evil.example",
    "%09//evil.example",
    "/%5Cevil.example",         # backslash: a browser reads /\ as //
    "%5C%5Cevil.example",
    "//evil.example",
    "///evil.example",
    "https://evil.example/",
    "https:evil.example",
    "javascript:alert(1)",
    "%20//evil.example",
    "/%E2%80%A8/evil.example",
    "/%00/evil.example",
]


@pytest.mark.parametrize("next_value", ATTACKS)
def test_login_never_redirects_off_site_and_never_fails(client, make_user, next_value):
    user = make_user("lesen")
    token = client.csrf_token("/anmelden")
    response = client.post(f"/anmelden?next={next_value}", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    location = response.headers["Location"]
    # Refused targets fall back to the start page; "///x" is read as the path "/x" of this site.
    assert location == ("/evil.example" if next_value == "///evil.example" else "/")
    if NODE:
        assert browser_origins([location]) == [ORIGIN]
    assert client.get("/").status_code == 200  # the login itself worked


def test_a_path_of_this_site_is_kept_as_the_browser_will_send_it(client, make_user):
    user = make_user("lesen")
    token = client.csrf_token("/anmelden")
    response = client.post("/anmelden?next=/verteiler/%3Fq%3DK%C3%B6ln", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/verteiler/?q=K%C3%B6ln"


@needs_node
def test_the_issue_cases_really_leave_the_site_without_the_check():
    """The oracle sees what the issue reported: these targets, sent unchecked, leave the site."""
    raw = ["/\t/evil.example", "\t//evil.example", "//evil.example"]
    assert browser_origins([sent_location(target) for target in raw]) == ["http://evil.example"] * 3


# Characters that matter to URL parsers, and some ordinary ones.
_TRICKY = st.sampled_from(list("/\\\t\r\n :@?#%.e x") + ["%2F", "%5C", "%09", "\u2028", "\x00", "\x7f", "ü", "\u3000", "／"])


@needs_node
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_TRICKY, min_size=1, max_size=12).map("".join), min_size=50, max_size=120))
def test_whatever_next_says_the_browser_stays_on_this_site(targets):
    checked = [safe_next(target) or "/" for target in targets]
    origins = browser_origins([sent_location(target) for target in checked])
    offenders = [(target, origin) for target, origin in zip(targets, origins) if origin != ORIGIN]
    assert not offenders


@given(st.lists(st.sampled_from(["verteiler", "kontakte", "12", "listen", "a-b", "x_y"]), min_size=1, max_size=4),
       st.sampled_from(["", "?page=2", "?q=K%C3%B6ln&sort=email"]))
def test_ordinary_paths_pass_unchanged(segments, query):
    target = "/" + "/".join(segments) + query
    assert safe_next(target) == target
