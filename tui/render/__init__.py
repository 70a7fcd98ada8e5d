"""Human renderings of a report: terminal text and Markdown, English or Chinese."""
from __future__ import annotations

import json

from engine.report_model import Report

from .markdown import render_markdown
from .text import render_text


def render(report: Report, fmt: str, lang: str = "en", color: bool = False) -> str:
    if fmt == "json":
        return json.dumps(report.to_json_dict(), ensure_ascii=False, indent=2) + "\n"
    if fmt == "markdown":
        return render_markdown(report, lang)
    return render_text(report, lang, color)
