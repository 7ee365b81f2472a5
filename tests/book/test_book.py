"""The book builds from scratch with warnings as errors, prints to a PDF, and a browser
shows every page properly, in light and dark mode, at a laptop's width.

One clean build (a fresh output folder, so every page executes again) serves all
the tests in this module; xdist's loadscope keeps them on one worker. The browser is
Debian's chromium driven by Playwright (its Python package talks to any recent
chromium, so no browser is downloaded); `python3 dev.py test` installs chromium and
poppler-utils (pdftotext reads the PDF back).
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

spec = importlib.util.spec_from_file_location("dev", REPO / "dev.py")
dev = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dev)

CHAPTER = "book/01-recurrence.html"


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    result = subprocess.run([str(jupyter_book), "build", str(REPO), "--path-output", str(out),
                             "-W", "-n", "--keep-going"], capture_output=True, text=True,
                            env={k: v for k, v in os.environ.items() if k != "MPLBACKEND"})
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"book build failed:\n{log[-6000:]}"
    return out / "_build" / "html"


def toc_files() -> list[str]:
    """Every `file:` entry of _toc.yml, and its root."""
    text = (REPO / "_toc.yml").read_text()
    return re.findall(r"^root:\s*(\S+)", text, re.M) + re.findall(r"file:\s*(\S+)", text)


def test_book_builds_every_page(html):
    assert len(toc_files()) >= 6
    for page in ["index", *toc_files()]:
        assert (html / f"{page}.html").is_file(), page


def test_every_figure_on_a_chapter_page_has_real_alt_text(html):
    """A screen reader reads what a figure shows, not its file name."""
    figures = 0
    for page in sorted((html / "book").glob("0*.html")):
        for tag in re.findall(r"<img\b[^>]*>", page.read_text()):
            if "logo__image" in tag:
                continue  # decorative: the book's title is the link's text
            alt = re.search(r'\balt="([^"]*)"', tag)
            text = alt.group(1) if alt else ""
            assert len(text) >= 60 and not re.search(r"\.(png|svg|jpe?g)\b", text), (page.name, tag[:200])
            figures += 1
    assert figures >= 29  # 13 diagrams and 16 plots


COLUMNS = 88  # the widest code or printed line the text column shows without scrolling


def printed_text(output: dict) -> str:
    if output.get("output_type") == "stream":
        return "".join(output.get("text", ""))
    data = output.get("data", {})
    if any(kind.startswith("image/") for kind in data):
        return ""  # a figure's text/plain is its repr, never shown
    return "".join(data.get("text/plain", ""))


def test_code_and_printed_lines_fit_88_columns(html):
    """Every page and exercise as the book shows it: each code line and each printed line
    within 88 characters (the browser test checks that 88 fit the column)."""
    notebooks = sorted((html.parent / "jupyter_execute").rglob("*.ipynb"))
    assert len(notebooks) >= 17
    for notebook in notebooks:
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            lines = [("code", line) for line in "".join(cell["source"]).splitlines()]
            lines += [("output", line) for output in cell.get("outputs", [])
                      for line in printed_text(output).splitlines()]
            wide = [(kind, len(line), line[:60]) for kind, line in lines if len(line) > COLUMNS]
            assert not wide, (notebook.name, wide)


def test_no_page_loads_a_script_twice_or_from_the_network(html):
    """Jupyter Book 1.0 adds some extensions' scripts twice (sphinx-thebe's second copy threw
    in the console); the book's extension keeps one of each and drops thebe's."""
    for page in [html / "index.html", *sorted(html.rglob("*.html"))]:
        scripts = re.findall(r"<script\b[^>]*>.*?</script>", page.read_text(), re.S)
        repeated = {script for script in scripts if scripts.count(script) > 1}
        assert not repeated, (page.name, sorted(repeated)[:2])
        assert not [script for script in scripts if re.search(r'src="https?://', script)], page.name
        assert "unpkg.com" not in page.read_text(), page.name


def test_solutions_are_not_published(html):
    assert not (html / "solutions").exists()
    assert not list(html.rglob("*solution*.html"))
    published = "\n".join(p.read_text(errors="ignore") for p in html.rglob("*.html"))
    assert "### BEGIN SOLUTION" not in published and "BEGIN HIDDEN TESTS" not in published


def test_chapter_cites_the_bibliography(html):
    """Citations resolve to entries of references.bib on the references page."""
    page = (html / CHAPTER).read_text()
    assert re.search(r'href="references\.html#id\d+" title="Jeffrey L\. Elman\. Finding structure in time', page)
    assert "Finding structure in time" in (html / "book" / "references.html").read_text()


def missing(program: str, package: str) -> None:
    """Fail in CI, skip elsewhere, when a Debian program the test needs is absent."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{program} is not installed; `python3 dev.py test` installs {package} with apt-get")
    pytest.skip(f"{program} is not installed (apt-get install {package})")


@pytest.fixture(scope="module")
def pdf(html) -> Path:
    if dev.chromium() is None:
        missing("chromium", "chromium")
    assert dev.build_pdf(REPO, html.parents[1]) == 0
    return html / dev.PDF_NAME


def test_the_whole_book_prints_to_a_pdf(pdf, tmp_path):
    if shutil.which("pdftotext") is None:
        missing("pdftotext", "poppler-utils")
    text_file = tmp_path / "book.txt"
    subprocess.run(["pdftotext", "-layout", str(pdf), str(text_file)], check=True)
    text = text_file.read_text()
    pages = text.count("\f")
    assert pages >= 150, pages
    for title in ("1. The recurrence, by hand", "5. LSTM", "8. A word-level language model",
                  "Exercises 3:", "References", "Elman, 1990"):
        assert title in text, title
    # MathJax typeset before printing: no TeX delimiters left as text, no error output
    assert "\\[" not in text and "\\(" not in text and "$$" not in text
    assert "Traceback (most recent call last)" not in text
    # the introduction links to it, relative to the HTML folder
    assert f'href="../{dev.PDF_NAME}"' in (pdf.parent / "book" / "intro.html").read_text()


def test_every_chapter_offers_its_notebook(html):
    """The download menu of a MyST page has the executed page as a notebook, which
    JupyterLab opens without jupytext."""
    for page in sorted((html / "book").glob("0*.html")):
        notebook = html / "_sources" / "book" / f"{page.stem}.ipynb"
        assert f'href="../_sources/book/{page.stem}.ipynb"' in page.read_text(), page.name
        cells = json.loads(notebook.read_text())["cells"]
        assert sum(cell["cell_type"] == "code" for cell in cells) >= 5, notebook.name
        assert any(cell.get("outputs") for cell in cells if cell["cell_type"] == "code"), notebook.name


# What a reader's browser shows of one page, gathered by script: run after MathJax has
# typeset the page (its startup promise) and every image has loaded or failed.
INSPECT = """async () => {
  if (window.MathJax) await MathJax.startup.promise;  // only pages with maths load it
  await Promise.all([...document.images].map(img => img.complete ? null
      : new Promise(done => { img.onload = img.onerror = done; })));
  const article = document.querySelector("article.bd-article");
  const column = article.getBoundingClientRect();
  const text = el => el.textContent.trim().replace(/\\s+/g, " ").slice(0, 80);
  const beyond = [...article.querySelectorAll("*")]
      .filter(el => el.getBoundingClientRect().right > column.right + 1
                    && !el.closest("pre, mjx-container, .pst-scrollable-table-container, .highlight"))
      .map(el => `${el.tagName}: ${text(el)}`);
  const cut = [...article.querySelectorAll("pre, mjx-container[display=true], .pst-scrollable-table-container")]
      .filter(el => el.scrollWidth > el.clientWidth + 1)
      .map(el => `${el.tagName} ${el.scrollWidth}px in ${el.clientWidth}px: ${text(el)}`);
  const prose = [...article.querySelectorAll("p, li, td, h1, h2, h3")]
      .filter(el => !el.closest("pre, code, .cell_input, .cell_output"));
  const rgb = c => c.match(/[\\d.]+/g).map(Number);  // [r, g, b] or [r, g, b, alpha]
  return {
    theme: document.documentElement.dataset.theme,
    maths: article.querySelectorAll(".math").length,
    untypeset: [...article.querySelectorAll(".math")].filter(el => !el.querySelector("mjx-container"))
                   .map(text),
    mathErrors: document.querySelectorAll("mjx-merror").length,
    rawTeX: prose.filter(el => /\\$\\$|\\\\\\(|\\\\\\[|\\\\(frac|mathrm|mathtt|text)\\{/.test(el.textContent))
                 .map(text),
    errors: [...article.querySelectorAll(".output.traceback, .output.error, .output.stderr")].map(text),
    traceback: article.textContent.includes("Traceback (most recent call last)"),
    images: [...document.images].map(img => ({src: img.src.split("/").pop(), alt: img.alt,
        loaded: img.naturalWidth > 0, logo: img.classList.contains("logo__image"),
        scale: img.width / img.naturalWidth})),
    pageWidth: document.scrollingElement.scrollWidth, viewport: innerWidth,
    beyond, cut,
    figureBacks: [...article.querySelectorAll("img")].map(img => rgb(getComputedStyle(img).backgroundColor)),
    ink: rgb(getComputedStyle(article).color),
    paper: rgb(getComputedStyle(document.body).backgroundColor),
  };
}"""


def luminance(rgb: list[float]) -> float:
    """WCAG's relative luminance of an sRGB colour (an alpha channel is left out)."""
    def linear(channel: float) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: list[float], b: list[float]) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def book_pages(html: Path) -> list[Path]:
    return [html / f"{page}.html" for page in toc_files()]


@pytest.fixture(scope="module")
def browser():
    path = dev.chromium()
    if path is None:
        missing("chromium", "chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def inspect_pages(browser, pages: list[Path], scheme: str = "light", viewport=LAPTOP) -> dict[str, dict]:
    """Every page as a browser window of this size shows it, in this colour scheme."""
    context = browser.new_context(viewport=viewport, color_scheme=scheme)
    found = {}
    try:
        for path in pages:
            page = context.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda error, problems=problems: problems.append(f"script error: {error}"))
            page.on("console", lambda message, problems=problems: problems.append(message.text)
                    if message.type == "error" else None)
            page.on("requestfailed", lambda request, problems=problems: problems.append(
                f"failed to load {request.url}"))
            page.goto(path.as_uri(), wait_until="load")
            found[path.name] = page.evaluate(INSPECT) | {"console": problems}
            page.close()
    finally:
        context.close()
    return found


@pytest.fixture(scope="module")
def light(browser, html) -> dict[str, dict]:
    return inspect_pages(browser, book_pages(html), "light")


def test_every_page_typesets_its_maths(light):
    """Every formula Sphinx marked as maths is typeset, without a TeX error, and no TeX
    is left as text in the prose (a formula the parser missed)."""
    assert sum(seen["maths"] for seen in light.values()) >= 300
    for name, seen in light.items():
        assert not seen["untypeset"], (name, seen["untypeset"][:3])
        assert seen["mathErrors"] == 0 and not seen["rawTeX"], (name, seen["rawTeX"][:3])


def test_no_page_shows_an_error_or_logs_one(light):
    for name, seen in light.items():
        assert not seen["errors"] and not seen["traceback"], (name, seen["errors"])
        assert not seen["console"], (name, seen["console"])


def test_every_image_loads_with_real_alt_text(light):
    figures = 0
    for name, seen in light.items():
        for image in seen["images"]:
            assert image["loaded"], (name, image["src"])
            if image["logo"]:
                continue  # decorative: the book's title beside it is the link's text
            assert len(image["alt"]) >= 60 and not re.search(r"\.(png|svg|jpe?g)\b", image["alt"]), \
                (name, image)
            figures += 1
    assert figures >= 29


def test_figures_are_sharp_and_shown_at_full_size(light):
    """Plots are SVG, like the diagrams, and drawn to the column's width (7 inches), so
    no figure is shrunk in the page and its text stays as large as it was drawn."""
    for name, seen in light.items():
        for image in seen["images"]:
            if image["logo"]:
                continue
            assert image["src"].endswith(".svg"), (name, image["src"])
            assert image["scale"] >= 0.9, (name, image["src"], round(image["scale"], 2))


def test_nothing_overflows_the_text_column_at_1280px(light):
    """No element runs past the column, and every code cell, result, equation and table
    fits its box: nothing to scroll sideways on a laptop."""
    for name, seen in light.items():
        assert seen["pageWidth"] <= seen["viewport"], (name, seen["pageWidth"])
        assert not seen["beyond"], (name, seen["beyond"][:5])
        assert not seen["cut"], (name, seen["cut"][:5])


def test_a_phone_scrolls_only_code_and_formulas_sideways(browser, html):
    """On a phone the page itself never scrolls sideways: text wraps, and wide code,
    results, formulas and tables scroll inside their own boxes."""
    for name, seen in inspect_pages(browser, book_pages(html), viewport=PHONE).items():
        assert seen["pageWidth"] <= seen["viewport"], (name, seen["pageWidth"])
        assert not seen["beyond"], (name, seen["beyond"][:5])


def test_dark_mode_is_readable(browser, html):
    """Followed from the system's setting: dark paper, light ink, WCAG AA contrast."""
    for name, seen in inspect_pages(browser, book_pages(html), scheme="dark").items():
        assert seen["theme"] == "dark", name
        assert luminance(seen["paper"]) < 0.05, (name, seen["paper"])
        assert contrast(seen["ink"], seen["paper"]) >= 4.5, (name, seen["ink"], seen["paper"])
        # plots and diagrams draw dark ink on a transparent ground: the theme lays them on light paper
        for back in seen["figureBacks"]:
            assert len(back) == 3 and luminance(back) > 0.5, (name, back)


def test_offline_search_finds_a_chapter(browser, html):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto((html / "search.html").as_uri() + "?q=forget+gate", wait_until="load")
        page.wait_for_selector("#search-results ul li a", timeout=60_000)
        hits = page.eval_on_selector_all("#search-results ul li a", "links => links.map(a => a.href)")
    finally:
        context.close()
    assert any(hit.split("#")[0].endswith("book/05-lstm.html") for hit in hits), hits
