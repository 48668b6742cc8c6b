"""docs/BENCHMARKS.md holds two generated parts: the file-to-file section at the head (written by
benchmarks/file_bench.py) and the compute-only tables below (benchmarks/run_bench.py). Each
script replaces its own part and keeps the other."""

from __future__ import annotations

FILES_BEGIN = "<!-- file-to-file section: benchmarks/file_bench.py -->"
FILES_END = "<!-- end of the file-to-file section -->"


def files_section(document: str) -> str | None:
    """The file-to-file section of ``document`` with its markers, or None."""
    start, end = document.find(FILES_BEGIN), document.find(FILES_END)
    if start < 0 or end < start:
        return None
    return document[start : end + len(FILES_END)]


def _after_title(document: str, section: str) -> str:
    title, newline, rest = document.partition("\n")
    if not title.startswith("# "):
        return section + "\n\n" + document
    return f"{title}{newline}\n{section}\n\n{rest.lstrip(chr(10))}"


def with_files_section(document: str, markdown: str) -> str:
    """``document`` with its file-to-file section replaced by ``markdown`` (placed right after
    the title when it has none yet)."""
    section = f"{FILES_BEGIN}\n{markdown.strip()}\n{FILES_END}"
    old = files_section(document)
    if old is not None:
        return document.replace(old, section)
    return _after_title(document, section)


def keeping_files_section(old_document: str, new_document: str) -> str:
    """``new_document`` (the compute-only page) with the file-to-file section of the old one."""
    section = files_section(old_document)
    return new_document if section is None else _after_title(new_document, section)
