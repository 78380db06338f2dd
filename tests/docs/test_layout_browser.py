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
  const boxes = 'main .math, main table, main figure, main pre:has(> #snippet), nav.site';
  for (const el of document.querySelectorAll(boxes)) {
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


SEARCH = """((query) => {
  const box = document.getElementById('search');
  box.value = query;
  box.dispatchEvent(new Event('input'));
  const list = document.getElementById('search-results');
  return {hidden: list.hidden,
          links: Array.from(list.querySelectorAll('a')).map(a => a.getAttribute('href'))};
})"""


@pytest.mark.parametrize("page", ["index", "huber"])
def test_search_finds_losses_by_name_alias_and_library_call(browser, site, page):
    browser.open((site / f"{page}.html").as_uri())
    found = browser.evaluate(SEARCH + "('focal')")
    assert sorted(found["links"]) == ["sigmoid_focal.html", "softmax_focal.html"]
    assert not found["hidden"]
    # An alias, a library's call, two words that must both occur.
    assert browser.evaluate(SEARCH + "('bce')")["links"][0] == "binary_cross_entropy.html"
    assert "huber.html" in browser.evaluate(SEARCH + "('torch huber_loss')")["links"]
    assert browser.evaluate(SEARCH + "('segmentation tversky')")["links"] == ["tversky.html"]
    nothing = browser.evaluate(SEARCH + "('no such loss')")
    assert nothing == {"hidden": True, "links": []}


#: Each <math> element's box: MathML that Chromium typesets has a size, and an
#: <merror> marks one it could not.
MATHML = """(() => Array.from(document.querySelectorAll('math')).map(m => {
  const r = m.getBoundingClientRect();
  return [Math.round(r.width), Math.round(r.height), m.querySelectorAll('merror').length];
}))()"""


@pytest.mark.parametrize("name", ["huber", "softmax_focal", "tversky"])
def test_the_notebook_mathml_is_typeset_without_javascript(browser, tmp_path, name):
    page = tmp_path / f"{name}.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
        + symloss.get(name)._repr_html_()
        + "</body></html>"
    )
    browser.open(page.as_uri())
    boxes = browser.evaluate(MATHML)
    assert len(boxes) >= 2
    for width, height, errors in boxes:
        assert width > 20 and height > 10 and errors == 0, boxes
