"""A visitor's journeys in a real browser: Debian's headless Chromium driven by Selenium,
with JavaScript on and off, through the load balancer and two front caches.

A like keeps your place (the URL, the scroll position, the history), the post form counts as
the API does (150 emoji are 150, not 300), a refused post leaves an address that reloads
safely, and a form opened before logging out and in again in another tab still posts.
Skipped, with the reason, where Chromium or chromedriver is not installed (.ci/run installs
both: apt-get install chromium chromium-driver).
"""
from __future__ import annotations

import os
import shutil
from typing import Any, Callable, Iterator

import pytest

from httpkit import Server
from tests.web.conftest import StartWeb
from tests.web.helpers import PASSWORD, Browser, post, sign_up

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip("Chromium and chromedriver are needed: apt-get install chromium chromium-driver",
                allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402

os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download a driver
Driver = Any  # selenium's WebDriver; its types are not checked here


def chrome(javascript: bool = True) -> Driver:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--window-size=1280,900", "--disable-background-networking"):
        options.add_argument(argument)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2})
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER),
                            options=options)


@pytest.fixture
def site(start_web: StartWeb, lb: Server) -> str:
    """The web in front of the load balancer and two caches, with alice and 25 tweets."""
    url = start_web(lb.url).url
    alice = Browser(url)
    sign_up(alice, "alice", "Alice Liddell")
    for n in range(25):
        post(alice, f"tweet {n} #coffee")
    return url


@pytest.fixture
def with_js() -> Iterator[Driver]:
    driver = chrome()
    yield driver
    driver.quit()


@pytest.fixture
def without_js() -> Iterator[Driver]:
    driver = chrome(javascript=False)
    yield driver
    driver.quit()


def wait(driver: Driver, done: Callable[[Driver], Any]) -> Any:
    return WebDriverWait(driver, 10).until(done)


def log_in(driver: Driver, site: str) -> None:
    driver.get(site + "/login")
    driver.find_element(By.ID, "username").send_keys("alice")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]").click()
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "form.logout"))


def like_count(item: Any) -> int:
    return int(item.find_element(By.CSS_SELECTOR, "button.like .count").text)


def in_view(driver: Driver, element: Any) -> bool:
    return bool(driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return r.top >= 0 && r.bottom <= window.innerHeight;", element))


def test_without_javascript_a_like_on_an_older_page_comes_back_to_the_tweet(
        without_js: Driver, site: str) -> None:
    driver = without_js
    driver.get(site + "/")
    older = driver.find_element(By.CSS_SELECTOR, "a[rel=next]").get_attribute("href")
    driver.get(older)
    tweet = driver.find_elements(By.CSS_SELECTOR, "li.tweet")[2]
    tweet_id, before = tweet.get_attribute("id"), like_count(tweet)
    tweet.find_element(By.CSS_SELECTOR, "button.like").click()
    wait(driver, lambda d: d.current_url.endswith(f"#{tweet_id}"))
    assert driver.current_url == f"{older}#{tweet_id}"
    liked = driver.find_element(By.ID, tweet_id)
    assert like_count(liked) == before + 1 and in_view(driver, liked)


def test_without_javascript_a_like_on_page_two_of_a_search_stays_on_page_two(
        without_js: Driver, site: str) -> None:
    driver = without_js
    driver.get(site + "/search?q=coffee&kind=tweets")
    page_two = driver.find_element(By.CSS_SELECTOR, "a[rel=next]").get_attribute("href")
    driver.get(page_two)
    first = driver.find_element(By.CSS_SELECTOR, "li.tweet")
    tweet_id = first.get_attribute("id")
    first.find_element(By.CSS_SELECTOR, "button.like").click()
    wait(driver, lambda d: d.current_url.endswith(f"#{tweet_id}"))
    assert driver.current_url == f"{page_two}#{tweet_id}"


def test_the_13th_tweets_like_happens_in_place_with_javascript(with_js: Driver,
                                                               site: str) -> None:
    driver = with_js
    driver.get(site + "/")
    tweet = driver.find_elements(By.CSS_SELECTOR, "li.tweet")[12]
    driver.execute_script("arguments[0].scrollIntoView()", tweet)
    place = driver.execute_script("return [location.href, history.length, window.scrollY]")
    button = tweet.find_element(By.CSS_SELECTOR, "button.like")
    before = like_count(tweet)
    for n in (1, 2):
        button.click()
        wait(driver, lambda d: like_count(tweet) == before + n)
        assert button.get_attribute("aria-label") == f"Like, {before + n} like" + (
            "" if before + n == 1 else "s")
    assert driver.execute_script(
        "return [location.href, history.length, window.scrollY]") == place
    tweet_id = tweet.get_attribute("id")
    driver.refresh()  # the likes were counted, not only drawn
    assert like_count(driver.find_element(By.ID, tweet_id)) == before + 2


def set_text(driver: Driver, text: str) -> None:
    """Type into the post form (ChromeDriver's send_keys cannot type emoji)."""
    driver.execute_script(
        "const box = document.getElementById('text'); box.value = arguments[0];"
        "box.dispatchEvent(new Event('input', {bubbles: true}));", text)


def gone(element: Any) -> Callable[[Driver], bool]:
    """A wait condition: ``element`` no longer belongs to the page shown. Mid-navigation
    chromedriver may say so with a generic error ("Node with given id does not belong to the
    document") rather than the stale-element one that ``staleness_of`` waits for."""
    def check(driver: Driver) -> bool:
        try:
            element.is_enabled()
        except WebDriverException:  # StaleElementReferenceException is one
            return True
        return False
    return check


def press_post(driver: Driver) -> None:
    """Press Post and wait for the page after it (the page before may show a notice too)."""
    before = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, "form.compose button[type=submit]").click()
    wait(driver, gone(before))


def tweet_texts(driver: Driver) -> list[str]:
    return [p.text for p in driver.find_elements(By.CSS_SELECTOR, "li.tweet .text")]


def test_150_emoji_are_counted_and_posted_as_150(with_js: Driver, site: str) -> None:
    driver = with_js
    log_in(driver, site)
    box = driver.find_element(By.ID, "text")
    assert box.get_attribute("maxlength") is None
    set_text(driver, "😀" * 150)
    assert driver.find_element(By.ID, "text-count").text == "150/280"
    press_post(driver)
    assert tweet_texts(driver)[0] == "😀" * 150


def test_a_tweet_too_long_is_refused_at_an_address_that_reloads_safely(
        with_js: Driver, site: str) -> None:
    driver = with_js
    log_in(driver, site)
    set_text(driver, "a" * 281)
    assert "over" in driver.find_element(By.ID, "text-count").get_attribute("class")
    press_post(driver)
    summary = wait(driver, lambda d: d.find_elements(By.ID, "error-summary"))[0]
    assert driver.current_url == site + "/"
    assert "280" in summary.text and driver.title.startswith("Error")
    assert driver.execute_script("return document.activeElement.id") == "error-summary"
    assert driver.find_element(By.ID, "text").get_attribute("value") == "a" * 281
    shown = tweet_texts(driver)
    driver.refresh()  # no "resubmit the form?" question: the page is a GET
    assert not driver.find_elements(By.ID, "error-summary") and tweet_texts(driver) == shown


def post_after_another_tab(driver: Driver, site: str, text: str, log_in_again: bool) -> Any:
    """Write ``text`` in one tab, log out (and maybe in again) in another, then Post in the
    first; return the notice the answer shows."""
    log_in(driver, site)
    first_tab = driver.current_window_handle
    set_text(driver, text)
    driver.switch_to.new_window("tab")
    driver.get(site + "/")
    driver.find_element(By.CSS_SELECTOR, "form.logout button").click()
    wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, "form.logout"))
    if log_in_again:
        log_in(driver, site)
    driver.close()
    driver.switch_to.window(first_tab)
    press_post(driver)
    return wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".notice"))[0]


def test_a_form_opened_before_logging_out_and_in_in_another_tab_still_posts(
        with_js: Driver, site: str) -> None:
    driver = with_js
    notice = post_after_another_tab(driver, site, "written before the other tab logged in again",
                                    log_in_again=True)
    assert notice.text == "Posted."
    assert tweet_texts(driver)[0] == "written before the other tab logged in again"


def test_a_post_after_logging_out_in_another_tab_waits_for_the_next_log_in(
        with_js: Driver, site: str) -> None:
    driver = with_js
    notice = post_after_another_tab(driver, site, "keep me", log_in_again=False)
    assert driver.current_url == site + "/login" and "waiting" in notice.text
    log_in(driver, site)
    assert driver.find_element(By.ID, "text").get_attribute("value") == "keep me"


def test_the_dashboards_chart_labels_stay_legible_on_a_phone(with_js: Driver, site: str) -> None:
    driver = with_js
    driver.set_window_size(390, 844)
    driver.get(site + "/dashboard")
    sizes = driver.execute_script(
        "return Array.from(document.querySelectorAll('svg text'), t =>"
        " parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a);")
    assert len(sizes) >= 10 and min(sizes) >= 11, sizes  # px on the screen; 640 wide was 6.6
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
