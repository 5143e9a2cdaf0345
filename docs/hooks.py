"""MkDocs hook: the reference pages' generated parts (mlplatform/reference.py)."""

from mlplatform.reference import fill


def on_page_markdown(markdown, page, config, files):
    return fill(markdown)
