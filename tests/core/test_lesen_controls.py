"""A `lesen` account sees no control it cannot use: no page it may open holds a form that posts to a
route answering 403 for it (walked over every page, generated from the URL map)."""
from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

from werkzeug.exceptions import MethodNotAllowed, NotFound

from tests.core.test_access_walk import RANK, browser, expected_role, is_public, routes, walk_app  # noqa: F401  (fixture)


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets: list[str | None] = []  # action of each POST form and formaction of its buttons
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and (attrs.get("method") or "get").lower() == "post":
            self.targets.append(attrs.get("action") or None)
        elif tag in ("button", "input") and attrs.get("formaction"):
            self.targets.append(attrs["formaction"])
        elif tag == "a" and (attrs.get("href") or "").startswith("/"):
            self.links.append(attrs["href"])


def controls(html: str, page_url: str) -> tuple[list[str], list[str]]:
    """(paths the page's forms post to, paths its links lead to)."""
    parser = _Forms()
    parser.feed(html)
    return ([urlsplit(target).path if target else page_url for target in parser.targets],
            [urlsplit(link).path for link in parser.links])


def test_lesen_sees_no_form_that_would_answer_403(walk_app):
    app = walk_app
    client = browser(app, "lesen")
    adapter = app.url_map.bind("localhost")
    problems, forms_seen, pages = [], 0, 0
    for endpoint, method, url in routes(app, 1):
        if method != "GET":
            continue
        response = client.get(url)
        if response.status_code != 200 or not response.mimetype == "text/html":
            continue
        if is_public(app, endpoint):
            continue  # the login and answer pages are for everyone
        pages += 1
        targets, links = controls(response.get_data(as_text=True), urlsplit(url).path)
        for link in links:
            try:
                link_endpoint, _ = adapter.match(link, method="GET")
            except (MethodNotAllowed, NotFound):
                continue
            if RANK["lesen"] < RANK[expected_role(app, link_endpoint, "GET")]:
                problems.append(f"{url}: Link auf {link} ({link_endpoint}, braucht {expected_role(app, link_endpoint, 'GET')})")
        for target in targets:
            try:
                post_endpoint, _ = adapter.match(target, method="POST")
            except (MethodNotAllowed, NotFound):
                problems.append(f"{url}: Formular an {target} (keine POST-Route)")
                continue
            forms_seen += 1
            needed = expected_role(app, post_endpoint, "POST")
            if RANK["lesen"] < RANK[needed]:
                problems.append(f"{url}: Formular an {target} ({post_endpoint}, braucht {needed})")
    assert pages >= 20 and forms_seen >= pages  # every page has at least the logout form
    assert not problems, "\n".join(sorted(set(problems)))
