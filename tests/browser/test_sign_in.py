"""A user signs in through the real browser, switches the language and signs out."""

import pytest

from tests.browser.conftest import sign_in
from tests.debt_collections.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_user_signs_in_switches_to_chinese_and_signs_out(new_page, live_server):
    make_user("col", "collector")
    page = new_page()
    sign_in(page, live_server, "col", "wrong password")
    assert page.locator("[role=alert]").inner_text().startswith("Your user name and password did not match")
    sign_in(page, live_server, "col")
    assert page.url.startswith(f"{live_server.url}/work/")
    page.click("button[name=language][value=zh-hans]")
    page.wait_for_load_state("networkidle")
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    assert page.locator("header .mainnav").inner_text().startswith("工作列表")
    page.click("text=退出登录")
    page.wait_for_load_state("networkidle")
    assert "/accounts/login/" in page.url
