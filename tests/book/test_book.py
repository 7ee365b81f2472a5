"""The book builds from scratch with warnings as errors, and a browser shows it properly.

One clean build (a fresh output folder, so every page executes again) serves all
the tests in this module; xdist's loadscope keeps them on one worker.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

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
            alt = re.search(r'\balt="([^"]*)"', tag)
            text = alt.group(1) if alt else ""
            assert len(text) >= 60 and not re.search(r"\.(png|svg|jpe?g)\b", text), (page.name, tag[:200])
            figures += 1
    assert figures >= 29  # 13 diagrams and 16 plots


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


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def rendered(html, tmp_path_factory) -> str:
    """The chapter's DOM after scripts ran (MathJax typesets in the page)."""
    browser = chromium()
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; `python3 dev.py test` installs it with apt-get")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=20000"]
    url = (html / CHAPTER).as_uri()
    shot = tmp_path_factory.getbasetemp() / "chapter-01.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1280,2400", url],
                   capture_output=True, timeout=120)
    result = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_browser_renders_the_maths(rendered):
    # MathJax replaces each $$...$$ by an <mjx-container>; unrendered TeX would stay as text.
    assert len(re.findall(r"<mjx-container", rendered)) >= 10
    assert "MathJax" in rendered


def test_browser_shows_the_figures(rendered, html):
    images = re.findall(r'<img[^>]+src="([^"]+\.png)"', rendered)
    figures = [src for src in images if "_images/" in src]
    assert figures, "no executed figure on the chapter page"
    for src in figures:
        assert (html / "book" / src).resolve().stat().st_size > 5000, src


def test_browser_page_has_no_error_output(rendered):
    for marker in ("Traceback (most recent call last)", 'class="output traceback',
                   'class="output stderr', 'class="output error', "NotImplementedError"):
        assert marker not in rendered, marker
