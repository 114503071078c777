"""The login page in headless Chromium, in Dutch and English."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_login_page_renders_in_dutch_and_english(page, screenshot, nurse_a):
    page.goto(f"{page.base_url}/login/")
    assert page.locator("h1").inner_text() == "Inloggen"
    assert page.get_attribute("html", "lang") == "nl"
    screenshot(page, "login-nl")
    page.click("button[name=language][value=en]")
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").inner_text() == "Log in"
    assert page.get_attribute("html", "lang") == "en"
    screenshot(page, "login-en")


def test_nurse_logs_in_and_sees_home(page, browser_login, screenshot, nurse_a):
    browser_login(page, page.base_url, "nurse_a")
    assert page.url.rstrip("/") == page.base_url
    assert "nurse_a" in page.locator("nav").inner_text()
    screenshot(page, "home-nurse")


def test_wrong_password_shows_message(page, nurse_a):
    page.goto(f"{page.base_url}/login/")
    page.fill("input[name=username]", "nurse_a")
    page.fill("input[name=password]", "wrong")
    page.click("form.login-form button[type=submit]")
    assert page.locator(".alert-danger, .invalid-feedback").count() >= 1
