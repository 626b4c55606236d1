"""Check the web's pages with axe-core in headless Chromium (a development check that pytest
does not collect: it needs npm's axe-core and a running stack).

    npm install --prefix .venv/axe axe-core@4
    .venv/bin/python tests/web/a11y.py http://127.0.0.1:8080 \
        .venv/axe/node_modules/axe-core/axe.min.js

Visits the pages logged out, then signs up (a fresh account) and visits them logged in, at
1280x900 and at 390x844, and prints every rule axe-core found broken, with the pages where it
did. Exit status 1 if any. Needs a running stack with some tweets (one with #coffee helps).
"""
from __future__ import annotations

import argparse
import secrets
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.common.by import By

PAGES = ["/", "/tweets/1", "/accounts", "/search", "/search?q=coffee&kind=tweets",
         "/search?q=a&kind=accounts", "/tags/coffee", "/dashboard", "/dashboard/logs",
         "/login", "/signup", "/no/such/page"]
SIGNED_IN = ["/", "/tweets/1", "/password", "/logout", "/dashboard"]
SIZES = {"desktop": (1280, 900), "phone": (390, 844)}


def chrome() -> Any:
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu"):
        options.add_argument(argument)
    return webdriver.Chrome(service=webdriver.ChromeService("/usr/bin/chromedriver"),
                            options=options)


def check(driver: Any, axe: str, url: str) -> list[dict[str, Any]]:
    driver.get(url)
    driver.execute_script(axe)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations));")
    return list(result)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("base")
    parser.add_argument("axe", type=Path)
    args = parser.parse_args()
    axe = args.axe.read_text(encoding="utf-8")
    found: dict[str, set[str]] = defaultdict(set)
    help_of: dict[str, str] = {}
    checked = 0
    driver = chrome()
    try:
        for size, (width, height) in SIZES.items():
            driver.delete_all_cookies()
            driver.set_window_size(width, height)
            visits = [(page, "out") for page in PAGES]
            for page, who in visits + [("", "sign-up")] + [
                    (page, "in") for page in SIGNED_IN]:
                if who == "sign-up":
                    driver.get(args.base + "/signup")
                    driver.find_element(By.ID, "username").send_keys(
                        "a11y_" + secrets.token_hex(4))
                    driver.find_element(By.ID, "password").send_keys("correct horse battery")
                    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
                    continue
                for violation in check(driver, axe, args.base + page):
                    rule = f"{violation['id']} ({violation['impact']})"
                    found[rule].add(f"{page} [{who}, {size}]")
                    help_of[rule] = violation["help"]
                checked += 1
    finally:
        driver.quit()
    print(f"axe-core checked {checked} page views")
    for rule, where in sorted(found.items()):
        print(f"- {rule}: {help_of[rule]}\n    on {', '.join(sorted(where))}")
    if not found:
        print("no violations")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
