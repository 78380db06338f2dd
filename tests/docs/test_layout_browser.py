"""No formula or table runs out of its column at 1280 px (issue 16, item 3), checked in
headless Chromium on every page of the site.  Skips without chromium unless
``SYMLOSS_REQUIRE_BROWSER=1``."""

from __future__ import annotations

import os

import pytest
from integration._cdp import Browser, find_chromium

import symloss
import symloss.docs as docs

CHROMIUM = find_chromium()
if CHROMIUM is None and os.environ.get("SYMLOSS_REQUIRE_BROWSER") != "1":
    pytest.skip("chromium is not installed", allow_module_level=True)

#: Each formula, table and source block that reaches past the right edge of the column,
#: or whose content is wider than its own box (a formula scrolled sideways), and every
#: KaTeX error.
OVERFLOW = """(() => {
  const main = document.querySelector('main').getBoundingClientRect();
  const bad = [];
  for (const el of document.querySelectorAll('main .math, main table, main figure')) {
    const r = el.getBoundingClientRect();
    const clipped = getComputedStyle(el).display !== 'inline' && el.scrollWidth > el.clientWidth + 1;
    if (r.right > main.right + 1 || clipped) {
      bad.push(el.tagName + '.' + el.className + ' ' + Math.round(r.width) + '/' + el.scrollWidth);
    }
  }
  return {bad, errors: document.querySelectorAll('.katex-error').length,
          page: document.documentElement.scrollWidth, width: Math.round(main.width)};
})()"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("layout") / "site"
    docs.build_site(out, progress=False)
    return out


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM is not None, "chromium is required here (SYMLOSS_REQUIRE_BROWSER=1)"
    with Browser(CHROMIUM) as b:
        for domain in ("Page", "Runtime"):
            b.call(f"{domain}.enable")
        b.call(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        yield b


def measure(browser, path):
    browser.open(path.as_uri())
    browser.evaluate("document.fonts.ready.then(() => document.fonts.status)", await_promise=True)
    browser.evaluate("new Promise(r => requestAnimationFrame(() => r(true)))", await_promise=True)
    return browser.evaluate(OVERFLOW)


@pytest.mark.parametrize("name", ["index", *symloss.names()])
def test_nothing_overflows_its_column_at_1280px(browser, site, name):
    result = measure(browser, site / f"{name}.html")
    assert result["errors"] == 0
    assert result["bad"] == [], result
    assert result["page"] <= 1280


def test_the_check_catches_a_formula_too_wide(browser, site):
    page = site / "sum_squared_error.html"
    wide = site / "wide-copy.html"
    long = " + ".join(f"y_{{{k}}}^{{2}}" for k in range(120))
    wide.write_text(
        page.read_text().replace(
            '<div class="math display">', f'<div class="math display">{long} + ', 1
        )
    )
    try:
        assert measure(browser, wide)["bad"]
    finally:
        wide.unlink()
