"""The documentation: a short README pointing into docs/, and links that lead somewhere."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def markdown_files() -> list[str]:
    docs = os.path.join(ROOT, "docs")
    return [os.path.join(ROOT, "README.md")] + [
        os.path.join(docs, name) for name in sorted(os.listdir(docs)) if name.endswith(".md")
    ]


def test_readme_is_at_most_250_lines():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) <= 250


def test_every_docs_page_is_linked_from_the_readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        linked = {os.path.normpath(target) for target in LINK.findall(f.read())}
    pages = {os.path.relpath(p, ROOT) for p in markdown_files()[1:]}
    assert pages - linked == set()


def test_relative_links_in_the_docs_lead_to_files_that_exist():
    broken = []
    for page in markdown_files():
        with open(page, encoding="utf-8") as f:
            for target in LINK.findall(f.read()):
                if "://" in target:
                    continue
                if not os.path.exists(os.path.join(os.path.dirname(page), target)):
                    broken.append(f"{os.path.relpath(page, ROOT)} -> {target}")
    assert broken == []
