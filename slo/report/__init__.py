"""Render an SLO report (`gameday slo report`) for the people and tools that read it.

`write_report(report, out_dir)` writes, in this order:

- report.json: `SloReport.to_json()`, indented, UTF-8 (CI reads `passed`);
- junit.xml: one test case per SLO for GitLab, Jenkins and GitHub test reporters;
- summary.md: a verdict line, the SLO table and the findings, for a PR comment;
- report.html: one self-contained page with the same table and the plots
  (latency and every SLO's burn rate over time, fault windows shaded).

Every file is the same for the same report, except the PNG bytes inside report.html.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from slo.report._html import render_html
from slo.report._junit import render_junit
from slo.report._text import console_table, render_summary
from slo.results import SloReport

__all__ = [
    "FILES",
    "console_table",
    "render_html",
    "render_json",
    "render_junit",
    "render_summary",
    "write_report",
]

FILES = {
    "json": "report.json",
    "junit": "junit.xml",
    "markdown": "summary.md",
    "html": "report.html",
}


def _strict(value: Any) -> Any:
    """JSON that every parser reads: NaN and infinities (no number in JSON) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(item) for item in value]
    return value


def render_json(report: SloReport) -> str:
    """report.json: `report.to_json()` in its own field order, indented by 2."""
    document = _strict(report.to_json())
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_report(report: SloReport, out_dir: Path) -> dict[str, Path]:
    """Write the four report files into `out_dir` (created if needed); returns their paths.

    The machine-readable files come first, so CI has its verdict even if drawing fails
    (a plot that cannot be drawn becomes a placeholder saying so rather than an error).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    renderers = {
        "json": render_json,
        "junit": render_junit,
        "markdown": render_summary,
        "html": render_html,
    }
    written: dict[str, Path] = {}
    for kind, render in renderers.items():
        path = out_dir / FILES[kind]
        path.write_text(render(report), encoding="utf-8")
        written[kind] = path
    return written
