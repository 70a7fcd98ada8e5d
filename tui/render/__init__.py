"""Human renderings of a report: terminal text and Markdown, English or Chinese."""
from __future__ import annotations

from engine.report_model import Report, json_indent

from .markdown import render_markdown
from .text import render_text


def render(report: Report, fmt: str, lang: str = "en", color: bool = False) -> str:
    if fmt == "json":
        return render_json(report).decode("utf-8")
    if fmt == "markdown":
        return render_markdown(report, lang)
    return render_text(report, lang, color)


def render_json(report: Report) -> bytes:
    """The JSON document as UTF-8 bytes, ending with a newline."""
    return report.to_json_bytes(json_indent(len(report.resets))) + b"\n"
