"""The generated HTML site in a real browser: headless Chromium, driven over CDP.

Debian's ``chromium`` package provides the browser (``.ci/run`` installs it).  Without
it these tests skip, except where ``SYMLOSS_REQUIRE_BROWSER=1`` (as in CI), where
they fail.  The pages are opened over ``file://``; every request the page makes is
recorded through the DevTools Network domain, so a request to anything but a local
file, a failed load (a missing font, say) or a script error fails the test.
"""

from __future__ import annotations

import os

import pytest
from _cdp import Browser, find_chromium

import symloss
import symloss.docs as docs

CHROMIUM = find_chromium()

if CHROMIUM is None and os.environ.get("SYMLOSS_REQUIRE_BROWSER") != "1":
    pytest.skip(
        "chromium is not installed (apt-get install chromium); "
        "set SYMLOSS_REQUIRE_BROWSER=1 to make this a failure",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "site"
    docs.build_site(out, progress=False)
    return out


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM is not None, "chromium is required here (SYMLOSS_REQUIRE_BROWSER=1)"
    with Browser(CHROMIUM) as b:
        for domain in ("Page", "Network", "Runtime", "Log"):
            b.call(f"{domain}.enable")
        yield b


def open_page(browser, path):
    """Open *path*, wait for KaTeX and the fonts, and return the events of this page."""
    since = len(browser.events)
    browser.open(path.as_uri())
    browser.evaluate("document.fonts.ready.then(() => document.fonts.status)", await_promise=True)
    browser.evaluate("new Promise(r => requestAnimationFrame(() => r(true)))", await_promise=True)
    return browser.events[since:]


COUNT = """(() => {
  const q = s => document.querySelectorAll(s).length;
  return {
    formulas: q('.math'),
    rendered: q('.math > .katex, .math > .katex-display > .katex'),
    katex: q('.katex'),
    errors: q('.katex-error'),
    unrendered: Array.from(document.querySelectorAll('.math'))
      .filter(el => !el.querySelector('.katex')).map(el => el.textContent).slice(0, 3),
    typeset: document.documentElement.getAttribute('data-typeset'),
    fonts: Array.from(document.fonts).filter(f => f.status === 'loaded').map(f => f.family),
    images: Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth]),
  };
})()"""


def check_events(events, page):
    requests = [
        e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"
    ]
    assert requests, f"{page}: no request seen (is the Network domain on?)"
    remote = [u for u in requests if not u.startswith(("file://", "data:"))]
    assert remote == [], f"{page}: requests left the page: {remote}"
    failed = [e["params"] for e in events if e["method"] == "Network.loadingFailed"]
    assert failed == [], f"{page}: failed loads: {failed}"
    thrown = [e["params"] for e in events if e["method"] == "Runtime.exceptionThrown"]
    assert thrown == [], f"{page}: script errors: {thrown}"
    console = [
        e["params"]
        for e in events
        if (
            e["method"] == "Runtime.consoleAPICalled"
            and e["params"]["type"] in ("error", "warning")
        )
        or (
            e["method"] == "Log.entryAdded"
            and e["params"]["entry"]["level"] in ("error", "warning")
        )
    ]
    assert console == [], f"{page}: console messages: {console}"


def test_index_links_to_every_registered_loss(browser, site, tmp_path):
    events = open_page(browser, site / "index.html")
    check_events(events, "index.html")
    hrefs = browser.evaluate(
        "Array.from(document.querySelectorAll('main a')).map(a => a.getAttribute('href'))"
    )
    pages = [h for h in hrefs if not h.startswith("#")]
    assert sorted(pages) == sorted(f"{n}.html" for n in symloss.names())
    # The other links are the groups' anchors, each to a heading on the index.
    anchors = {h[1:] for h in hrefs if h.startswith("#")}
    ids = set(browser.evaluate("Array.from(document.querySelectorAll('[id]')).map(e => e.id)"))
    assert anchors and anchors <= ids
    # Each link leads to a page that exists (the browser resolves them, too).
    resolved = browser.evaluate(
        "Array.from(document.querySelectorAll('main a:not([href^=\"#\"])')).map(a => a.href)"
    )
    assert len(resolved) == len(pages) and all(
        u.startswith("file://") and os.path.isfile(u[len("file://") :]) for u in resolved
    )
    counts = browser.evaluate(COUNT)
    assert counts["formulas"] == 2 * len(symloss.names())
    assert counts["rendered"] == counts["formulas"] and counts["errors"] == 0
    shot = browser.screenshot(tmp_path / "index.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


@pytest.mark.parametrize("name", symloss.names())
def test_every_formula_renders_offline(browser, site, name):
    page = site / f"{name}.html"
    events = open_page(browser, page)
    check_events(events, page.name)
    counts = browser.evaluate(COUNT)
    expected = page.read_text().count('class="math ')
    assert counts["formulas"] == expected > 0
    assert counts["unrendered"] == []
    assert counts["rendered"] == counts["katex"] == counts["formulas"]
    assert counts["typeset"] == str(expected)
    assert counts["errors"] == 0
    assert "KaTeX_Main" in counts["fonts"] and "KaTeX_Math" in counts["fonts"]
    import matplotlib  # noqa: F401  (the test extra installs it)

    # The loss's plot first, then any hyperparameter sweeps; every one loaded.
    images = counts["images"]
    assert images[0][0] == f"{name}.svg"
    assert all(width > 0 and (site / src).is_file() for src, width in images)


def test_a_loss_page_looks_right(browser, site, tmp_path):
    open_page(browser, site / "softmax_cross_entropy.html")
    shot = browser.screenshot(tmp_path / "softmax_cross_entropy.png")
    assert shot.stat().st_size > 50_000
    title = browser.evaluate("document.querySelector('h1').textContent")
    assert title == symloss.get("cce_logits").title
    # The copy button copies the LaTeX source, or selects it when the clipboard is closed.
    label = browser.evaluate(
        """(async () => {
          const b = document.querySelector('button.copy');
          b.click();
          await new Promise(r => setTimeout(r, 200));
          return b.textContent;
        })()""",
        await_promise=True,
    )
    assert label in ("Copied", "Selected: press Ctrl+C")


def test_the_checks_catch_a_broken_page(browser, site, tmp_path):
    """A page with a bad formula and a request to a (loopback) server fails both checks."""
    page = site / "sum_squared_error.html"
    broken = site / "broken-copy.html"
    text = page.read_text()
    text = text.replace('<div class="math display">', '<div class="math display">\\frac{', 1)
    text = text.replace("</main>", '<img src="http://127.0.0.1:9/missing.png"></main>')
    broken.write_text(text)
    try:
        events = open_page(browser, broken)
        counts = browser.evaluate(COUNT)
        assert counts["errors"] == 1
        with pytest.raises(AssertionError, match="requests left the page"):
            check_events(events, broken.name)
    finally:
        broken.unlink()
