"""A failed page execution fails every later build until the page executes cleanly."""
from __future__ import annotations

import importlib.util
import os
import textwrap

from conftest import REPO

spec = importlib.util.spec_from_file_location("dev", REPO / "dev.py")
dev = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dev)

PAGE = """\
---
jupytext:
  text_representation:
    format_name: myst
kernelspec:
  name: python3
  display_name: Python 3
---
# A page

```{{code-cell}} ipython3
{code}
```
"""


def test_a_failed_page_is_never_published_by_a_later_build(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    (book / "_config.yml").write_text(textwrap.dedent("""\
        title: tiny
        execute:
          execute_notebooks: cache
          timeout: 60
        only_build_toc_files: true
        """))
    (book / "_toc.yml").write_text("format: jb-book\nroot: index\n")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    (book / "index.md").write_text(PAGE.format(code="raise RuntimeError('broken on purpose')"))
    assert dev.build_book(book, book, env) != 0
    assert dev.build_book(book, book, env) != 0, "a rebuild published the failed page"
    (book / "index.md").write_text(PAGE.format(code="print('fixed')"))
    assert dev.build_book(book, book, env) == 0
    assert "fixed" in (book / "_build" / "html" / "index.html").read_text()
