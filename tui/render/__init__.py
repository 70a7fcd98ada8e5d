"""Human renderings of a report: terminal text and Markdown, English or Chinese."""
from __future__ import annotations

from engine.report_model import Report

from .markdown import render_markdown
from .text import render_text


# Above this many resets the JSON is written compact: the indentation is a third of the
# size; the content is the same.
INDENT_MAX_RESETS = 1000


def render(report: Report, fmt: str, lang: str = "en", color: bool = False) -> str:
    if fmt == "json":
        return render_json(report).decode("utf-8")
    if fmt == "markdown":
        return render_markdown(report, lang)
    return render_text(report, lang, color)


def render_json(report: Report) -> bytes:
    """The JSON document as UTF-8 bytes, ending with a newline."""
    indent = 2 if len(report.resets) <= INDENT_MAX_RESETS else None
    return report.to_json_bytes(indent) + b"\n"
