"""Log in through the browser and check every page the app offers with axe-core."""
from tests.e2e.conftest import assert_accessible, login

SKIP_ENDPOINTS = {"static", "auth.logout", "core.healthz", "core.first_run"}


def _simple_pages(app) -> list[str]:
    """Every GET page without URL parameters. Detail pages are checked by their domains' browser tests."""
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and not rule.arguments and rule.endpoint not in SKIP_ENDPOINTS:
            view = app.view_functions[rule.endpoint]
            if getattr(view, "_min_role", "lesen") in ("lesen", "sachbearbeitung", "admin") and not getattr(view, "_download", False):
                urls.append(rule.rule)
    return sorted(urls)


def test_login_page_is_accessible(page):
    page.goto("/anmelden")
    assert page.locator("html").get_attribute("lang") == "de"
    assert_accessible(page)
    page.get_by_role("button", name="Anmelden").click()  # empty form: error summary
    assert page.locator(".error-summary").is_visible()
    # Focus moves to the summary, so keyboard and screen-reader users land on the errors.
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    assert page.get_by_label("E-Mail-Adresse").get_attribute("aria-invalid") == "true"
    assert_accessible(page)


def test_every_page_passes_axe_as_admin(page, live_app):
    login(page, "admin")
    urls = _simple_pages(live_app)
    assert "/verwaltung/konten" in urls and "/" in urls
    for url in urls:
        response = page.goto(url)
        assert response.status == 200, url
        assert page.title().endswith("– KI-Post"), url
        assert_accessible(page)


def test_skip_link_moves_focus_to_main(page):
    login(page)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Zum Inhalt springen")
    assert skip.evaluate("el => el === document.activeElement")
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#inhalt"


def test_narrow_screen_has_no_horizontal_scrolling(page):
    page.set_viewport_size({"width": 320, "height": 800})
    login(page)
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 320


def test_pages_reflow_at_320_css_pixels(page, live_app):
    """WCAG 1.4.10: no sideways scrolling of the page at 320 px; wide tables scroll in their own box."""
    from ki_post.demo import load_demo_data
    from ki_post.extensions import db
    from tests.e2e.test_outbox import make_mailing

    mailing_id = make_mailing(live_app, 3)
    with live_app.app_context():
        load_demo_data()
        db.session.commit()
    login(page, "admin")
    page.set_viewport_size({"width": 320, "height": 800})
    for url in ("/", f"/postausgang/{mailing_id}", "/veranstaltungen/1", "/postausgang/"):
        page.goto(url)
        assert page.evaluate("document.documentElement.scrollWidth") <= 320, url
