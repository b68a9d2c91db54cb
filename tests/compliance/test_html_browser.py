"""The HTML report in a real headless Chromium (Debian's chromium or chromium-headless-shell): it renders,
it is screenshotted, and its structure is asserted from the DOM Chromium dumps; its filter box is used with
clicks and keys over the DevTools protocol (tests/compliance/cdp.py), page scripts disabled and enabled, and
what is displayed is measured. A missing browser fails these tests; it never skips them (.ci/run installs
the browser with apt-get)."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from acrsync.compliance import render
from tests.compliance.cdp import Browser
from tests.compliance.factory import XSS, report

BROWSERS = ("chromium", "chromium-headless-shell", "chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("no Chromium found (tried chromium, chromium-headless-shell, chromium-browser): install "
                "it with `apt-get update && apt-get install -y chromium` (.ci/run does this)")


def chromium(tmp: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    done = subprocess.run([browser(), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


class Dom(HTMLParser):
    """Element counts by tag and class, the text of scripts, and every text node."""

    def __init__(self):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)

    def having(self, tag: str, cls: str | None = None) -> list[dict]:
        return [a for t, a in self.elements if t == tag and (cls is None or cls in (a.get("class")
                                                                                    or "").split())]


def dom_of(html: str) -> Dom:
    d = Dom()
    d.feed(html)
    return d


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("html")
    path = tmp / "report.html"
    path.write_text(render.as_html(report(2000, namespaces=80, evil=True, tag_filter=XSS)), encoding="utf-8")
    return tmp, path


@pytest.fixture(scope="module")
def dumped(page) -> Dom:
    tmp, path = page
    return dom_of(chromium(tmp, "--dump-dom", path.as_uri()).stdout)


def test_renders_and_screenshots(page):
    tmp, path = page
    shot = tmp / "report.png"
    chromium(tmp, "--window-size=1400,1600", f"--screenshot={shot}", path.as_uri())
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_dom_structure_at_2000_repositories(dumped):
    dom = dumped
    assert len(dom.having("tr", "row")) == 2001
    assert len(dom.having("details", "ns")) == 81                    # grouped by namespace
    assert len(dom.having("details", "ok-rows")) == 80               # fully-OK rows collapsed
    assert not [a for a in dom.having("details", "ok-rows") if "open" in a]
    assert len(dom.having("tr", "fully-ok")) == 2001 - 81
    assert len(dom.having("td", "bad")) == 81                        # missing, drift, unreadable cells
    assert {a["id"] for a in dom.having("input") if a.get("type") == "radio"} >= {"show-all", "show-missing"}
    assert dom.having("input", None) and any(a.get("id") == "q" for a in dom.having("input"))
    assert len(dom.having("article", "finding")) == 41
    assert not dom.having("link") and not [a for t, a in dom.elements if a.get("src")]   # self-contained


def test_everything_is_escaped(page, dumped):
    html = page[1].read_text(encoding="utf-8")
    assert XSS not in html and "&lt;script&gt;" in html
    dom = dumped
    assert len(dom.having("script")) == 1                            # the page's own filter script only
    assert "alert" not in "".join(dom.scripts)
    text = "".join(dom.text)
    # shown as text: evidence, fix, config, names
    assert text.count(XSS) >= 6
    assert not dom.having("b")                                       # '<b>bold</b>' in evidence stayed text


def test_filter_box_with_javascript(page):
    tmp, path = page
    dom = dom_of(chromium(tmp, "--dump-dom", path.as_uri() + "?q=repo-0007").stdout)
    visible = [a for a in dom.having("tr", "row") if "filtered-out" not in a["class"].split()]
    assert [a["data-path"] for a in visible] == ["team-7/repo-0007"]
    assert len(dom.having("details", "filtered-out")) == 80


def test_filters_work_without_javascript(page):
    """With scripts off the text box does nothing, and the radio buttons and namespace links are CSS only:
    a probe page (scripts on, for measuring only) checks 'missing tags' and counts the rows CSS leaves."""
    tmp, path = page
    off = dom_of(chromium(tmp, "--blink-settings=scriptEnabled=false", "--dump-dom",
                          path.as_uri() + "?q=repo-0007").stdout)
    assert not [a for a in off.having("tr", "row") if "filtered-out" in a["class"].split()]
    html = path.read_text(encoding="utf-8")
    page_script = html[html.index("<script>"):html.index("</script>") + len("</script>")]
    probe = html.replace(page_script, """<script>
window.addEventListener("load", function () {
  function shown(sel) { return Array.from(document.querySelectorAll(sel)).filter(function (e) {
    return e.offsetParent !== null || getComputedStyle(e).display !== "none" && e.getClientRects().length;
  }).length; }
  var out = {all: shown("tr.row:not(.fully-ok)"), ns_all: shown("details.ns")};
  document.getElementById("show-missing").checked = true;
  out.missing = shown("tr.row"); out.ns_missing = shown("details.ns");
  document.getElementById("show-problems").checked = true;
  out.ns_problems = shown("details.ns");
  document.body.setAttribute("data-probe", JSON.stringify(out));
});
</script>""")
    probe_path = tmp / "probe.html"
    probe_path.write_text(probe, encoding="utf-8")
    dom = dom_of(chromium(tmp, "--dump-dom", "--virtual-time-budget=2000", probe_path.as_uri()).stdout)

    found = json.loads(next(a for t, a in dom.elements if t == "body")["data-probe"])
    assert found["all"] == 81 and found["ns_all"] == 81
    # only rows (and namespaces) with missing tags
    assert found["missing"] == 40 and found["ns_missing"] == 8
    assert found["ns_problems"] == 17                                # namespaces with nothing to do hidden
    target = dom_of(chromium(tmp, "--dump-dom", "--virtual-time-budget=2000",
                             probe_path.as_uri() + "#ns-team-7").stdout)
    at = json.loads(next(a for t, a in target.elements if t == "body")["data-probe"])
    # a namespace link shows that namespace only
    assert at["ns_all"] == 1


# --- The filter box, driven like a user would (clicks and keys over the DevTools protocol) -----------------
# What is displayed is measured in the page: a row counts as shown when checkVisibility() is true (no
# display:none on it or an ancestor, not inside a collapsed <details>) and it has a height.
SHOWN = """Array.from(document.querySelectorAll("#coverage tr.row"))
  .filter(e => e.checkVisibility() && e.getBoundingClientRect().height > 0).map(e => e.dataset.path)"""
SHOWN_NS = """Array.from(document.querySelectorAll("details.ns")).filter(e => e.checkVisibility())
  .map(e => e.dataset.ns)"""


@pytest.fixture(scope="module")
def rows():
    """path -> the row's states, computed from the report itself (independently of the renderer)."""
    out = {}
    for r in report(2000, namespaces=80, evil=True, tag_filter=XSS).rows:
        cells = list(r.cells.values())
        out[r.path] = {"ns": r.namespace, "ok": r.healthy, "missing": any(c.missing for c in cells),
                       "excluded": any(c.mode.value == "excluded" for c in cells)}
    return out


@pytest.fixture
def tab(tmp_path):
    b = Browser(browser(), FLAGS, tmp_path / "profile")
    yield b
    b.close()


def shown(tab: Browser) -> set[str]:
    return set(tab.js(SHOWN))


def choose_namespace(tab: Browser, value: str) -> None:
    """Sets the namespace <select> (DevTools evaluation, not a page script; no event is needed: the filter
    is CSS). Type-ahead would depend on keystroke timing; the arrow keys are tried in the no-JS test."""
    tab.js(f'document.getElementById("f-ns").value = {json.dumps(value)}')
    assert tab.js('document.getElementById("f-ns").value') == value


def test_filter_without_javascript(page, rows, tab):
    tab.open(page[1].as_uri() + "?q=repo-0007", scripts=False)
    # the page's own script did not run: no text field, the note says why, ?q= did nothing
    assert tab.js('document.getElementById("q").checkVisibility()') is False
    assert tab.js('document.getElementById("no-js").checkVisibility()') is True
    assert "Text search needs JavaScript" in tab.js('document.getElementById("no-js").textContent')
    assert tab.js('document.querySelectorAll(".filtered-out, .searching").length') == 0
    problems = {p for p, r in rows.items() if not r["ok"]}
    assert shown(tab) == problems                                     # fully-OK rows collapsed

    tab.click("#show-missing")
    assert tab.js('document.getElementById("show-missing").checked') is True
    missing = {p for p, r in rows.items() if r["missing"]}
    assert len(missing) == 40 and shown(tab) == missing
    assert tab.js('getComputedStyle(document.querySelector("tr.row.drift")).display') == "none"

    choose_namespace(tab, "team-7")
    assert tab.js('document.getElementById("f-ns").selectedOptions[0].value') == "team-7"
    assert tab.js(SHOWN_NS) == ["team-7"]
    assert shown(tab) == {p for p in missing if rows[p]["ns"] == "team-7"} and len(shown(tab)) == 5

    tab.click("#show-all")                  # one namespace, every state: its fully-OK rows stay collapsed
    assert shown(tab) == {p for p, r in rows.items() if r["ns"] == "team-7" and not r["ok"]}
    tab.click("#show-ok")                   # ... until "fully OK" shows them
    team7_ok = {p for p, r in rows.items() if r["ns"] == "team-7" and r["ok"]}
    assert len(team7_ok) == 20 and shown(tab) == team7_ok

    tab.js('document.getElementById("f-ns").focus()')
    tab.key("ArrowDown", "ArrowDown", 40)   # the keyboard on the select: the next namespace
    assert tab.js('document.getElementById("f-ns").value') == "team-70"
    assert tab.js(SHOWN_NS) == ["team-70"]
    assert shown(tab) == {p for p, r in rows.items() if r["ns"] == "team-70" and r["ok"]}

    choose_namespace(tab, "")
    tab.click("#show-excluded")             # healthy rows from collapsed groups, every namespace
    excluded = {p for p, r in rows.items() if r["excluded"]}
    assert len(excluded) == 40 and shown(tab) == excluded
    assert len(tab.js(SHOWN_NS)) == len({rows[p]["ns"] for p in excluded})


def test_filter_with_javascript(page, rows, tab):
    tab.open(page[1].as_uri(), scripts=True)
    assert tab.js('document.getElementById("q").checkVisibility()') is True
    assert tab.js('document.getElementById("no-js").checkVisibility()') is False

    tab.click("#q")
    tab.type_text("repo-0007")
    assert shown(tab) == {"team-7/repo-0007"}

    clear(tab)
    tab.type_text("team-7/")                # a namespace: all its rows, fully-OK ones included
    team7 = {p for p, r in rows.items() if r["ns"] == "team-7"}
    assert len(team7) == 25 and shown(tab) == team7
    assert tab.js(SHOWN_NS) == ["team-7"]

    tab.click("#show-missing")              # the CSS filters combine with the text
    assert shown(tab) == {p for p in team7 if rows[p]["missing"]}
    choose_namespace(tab, "team-3")
    assert shown(tab) == set() and tab.js(SHOWN_NS) == []

    choose_namespace(tab, "")
    tab.click("#q")
    clear(tab)
    tab.type_text("repo-04")
    want = {p for p, r in rows.items() if r["missing"] and "repo-04" in p}
    assert len(want) == 2 and shown(tab) == want
    clear(tab)                              # no text: the state filter alone again
    assert shown(tab) == {p for p, r in rows.items() if r["missing"]}
    tab.click("#show-all")
    assert shown(tab) == {p for p, r in rows.items() if not r["ok"]}


def clear(tab: Browser) -> None:
    tab.js('document.getElementById("q").focus(); document.getElementById("q").select()')
    tab.key("Backspace", "Backspace", 8)
    assert tab.js('document.getElementById("q").value') == ""


def style_of(html: str) -> str:
    return html[html.index("<style>"):html.index("</style>")]


def test_filter_css_grows_per_namespace_not_per_repository():
    small, large = (render.as_html(report(n, namespaces=80)) for n in (200, 2000))
    assert style_of(small) == style_of(large)                        # 10x the repositories, same CSS
    wide = render.as_html(report(2000, namespaces=2000))
    per_namespace = (len(style_of(wide)) - len(style_of(large))) / (2000 - 80)
    assert 0 < per_namespace < 100
    assert len(large) < 600_000 and len(wide) < 1_600_000           # bytes, whole page


def test_namespace_anchors_and_filter_classes_are_unique():
    r = report(3, namespaces=1)
    r.rows[0].namespace, r.rows[1].namespace, r.rows[2].namespace = "a.b", "a-b", "a-b-2"
    dom = dom_of(render.as_html(r))
    groups = dom.having("details", "ns")
    assert len({a["id"] for a in groups}) == len(groups) == 3
    assert len({a["class"] for a in groups}) == 3
    assert {a["value"] for a in dom.having("option", "o")} == {"a.b", "a-b", "a-b-2"}


def test_filter_at_2000_namespaces(tmp_path, tab):
    """One repository per namespace: the namespace chooser and a state still pick exactly the right rows."""
    path = tmp_path / "wide.html"
    path.write_text(render.as_html(report(2000, namespaces=2000)), encoding="utf-8")
    tab.open(path.as_uri(), scripts=False)
    choose_namespace(tab, "team-1907")
    assert tab.js(SHOWN_NS) == ["team-1907"] and shown(tab) == {"team-1907/repo-1907"}
    tab.click("#show-drift")
    assert shown(tab) == set() and tab.js(SHOWN_NS) == []
    tab.click("#show-missing")
    assert shown(tab) == {"team-1907/repo-1907"}
