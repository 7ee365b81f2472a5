"""The book's own Sphinx tweaks, each one a fix for something a reader saw.

* The references page labels entries as the text cites them ("Cho et al., 2014"), not
  with pybtex's alpha labels ("CvMerrienboerG+14") that match nothing on the page:
  sphinxcontrib-bibtex's documented way is a pybtex style plugin, registered here.
* Every page loaded sphinx-thebe's configuration script twice, and the second copy
  threw "Identifier 'THEBE_JS_URL' has already been declared" in the console (Jupyter
  Book 1.0 sets the extension up twice). The book has no live-code button
  (launch_buttons.thebe is off), so its scripts are dropped altogether, which also
  keeps an address on unpkg.com out of pages meant to work offline; any other script
  added twice is kept once.
* A chapter's download menu offered only its MyST source, which JupyterLab without
  jupytext opens as plain text. MyST-NB already writes each executed page as a
  notebook (jupyter_execute/); it is copied beside the sources and offered as .ipynb,
  as sphinx-book-theme itself does only when a launch button is configured. Where the
  page came from the execution cache, MyST-NB 1.4 writes that notebook without its
  outputs, so they are merged back from the same cache.
* Printed (the PDF), code and results wrap instead of being cut at the page's edge.
"""
from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import nbformat
from jupyter_cache import get_cache

from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle

STYLE = "author_year"


def surnames(entry) -> list[str]:
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    return [" ".join(part.render_as("text") for part in person.rich_last_names) for person in people]


def author_year(entry) -> str:
    names = surnames(entry)
    if len(names) > 2:
        who = f"{names[0]} et al."
    else:
        who = " and ".join(names) or entry.fields.get("title", "Anonymous")
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabels(BaseLabelStyle):
    """"Elman, 1990"; "Cho et al., 2014"; a, b, ... where two would read the same."""

    def format_labels(self, sorted_entries):
        labels = [author_year(entry) for entry in sorted_entries]
        repeated = Counter(labels)
        seen: Counter[str] = Counter()
        for label in labels:
            if repeated[label] == 1:
                yield label
            else:
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label]]
                seen[label] += 1


class AuthorYearStyle(PlainStyle):
    default_label_style = STYLE


def drop_script_duplicates(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    kept, seen = [], set()
    for script in scripts:
        # the same file or inline body, however each copy was added (priority, a filename
        # of None or "" for an inline script)
        attributes = getattr(script, "attributes", {})
        key = (getattr(script, "filename", str(script)) or "", tuple(sorted(attributes.items())))
        if key in seen or "thebe" in f"{key[0]} {attributes.get('body', '')}".lower():
            continue
        seen.add(key)
        kept.append(script)
    scripts[:] = kept


def offer_notebook(app, pagename, templatename, context, doctree) -> None:
    """Put the executed notebook of a MyST page where the download menu links to it."""
    if not context.get("sourcename", "").endswith((".md", ".md.txt")):
        return
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():
        return  # a page without code cells
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(with_outputs(app, executed), target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def with_outputs(app, path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    if any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"):
        return notebook
    cache_path = app.config.nb_execution_cache_path or Path(app.outdir).parent / ".jupyter_cache"
    try:
        _, notebook = get_cache(cache_path).merge_match_into_notebook(notebook)
    except KeyError:
        pass  # not in the cache: a page that is not executed keeps its inputs only
    return notebook


STATIC = Path(__file__).resolve().parent.parent / "_static"  # logo, favicon, course.css


def refresh_static(app, exception) -> None:
    """Sphinx 7.4 keeps a static file it copied before, even when the source changed;
    a changed course.css would otherwise reach only a clean build."""
    if exception is not None or app.builder.format != "html":
        return
    for source in STATIC.iterdir():
        target = Path(app.outdir) / "_static" / source.name
        if source.is_file() and (not target.exists() or target.read_bytes() != source.read_bytes()):
            shutil.copyfile(source, target)


def setup(app):
    app.connect("builder-inited", lambda app: app.config.html_static_path.append(str(STATIC)))
    app.connect("build-finished", refresh_static)
    app.add_css_file("course.css")
    register_plugin("pybtex.style.labels", STYLE, AuthorYearLabels)
    register_plugin("pybtex.style.formatting", STYLE, AuthorYearStyle)
    app.connect("html-page-context", drop_script_duplicates, priority=900)
    # before sphinx-book-theme builds the download menu (priority 501)
    app.connect("html-page-context", offer_notebook, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
