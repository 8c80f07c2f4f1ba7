"""summary.md (a PR comment) and the terminal table."""

from __future__ import annotations

import html
import re
from dataclasses import astuple

from slo.report import _format as fmt
from slo.results import SloReport, SloResult

_MD_PUNCTUATION = re.compile(r"([\\`*_\[\]|~#])")
_LIST_START = re.compile(r"^(\s*)([-+]|\d+[.)])(\s)")


def md_text(text: str) -> str:
    """Free text (descriptions, details) as inert Markdown on one line: no HTML, no markup."""
    one_line = " ".join(fmt.printable(text).split())
    escaped = html.escape(one_line, quote=False)
    return _MD_PUNCTUATION.sub(r"\\\1", escaped)


def _md_lines(text: str) -> str:
    """Free text that may span lines: each line escaped, joined with hard line breaks."""
    lines = [md_text(line) for line in text.splitlines() if line.strip()]
    return "  \n".join(_LIST_START.sub(r"\1\\\2\3", line) for line in lines)


def _md_row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"


def _context(report: SloReport) -> str:
    scale = f"{report.time_scale:g}x"
    return (
        f"Run {md_text(report.run_id)} against {md_text(report.target)}, time scale {scale}: "
        f"{md_text(report.started_at)} to {md_text(report.finished_at)} "
        f"({fmt.duration(report.range_s)}), Prometheus {md_text(report.prometheus)}."
    )


def _md_finding(slo: SloResult) -> str:
    facts = dict(fmt.facts(slo))
    lines = [f"#### {md_text(slo.name)}: {facts['status']}", ""]
    if slo.description:
        lines += [_md_lines(slo.description), ""]
    lines.append(
        f"Observed {facts['observed']} against an objective of {facts['objective']} "
        f"over {facts['events counted']} events; error budget spent: "
        f"{facts['error budget spent']}."
        + (" This is a key SLO: failing it fails the run." if slo.key else "")
    )
    if slo.detail:
        lines += ["", _md_lines(slo.detail)]
    return "\n".join(lines)


def render_summary(report: SloReport) -> str:
    """summary.md: a verdict line, the SLO table, then a paragraph per failing/warning SLO."""
    verdict = fmt.verdict(report)
    word, _, rest = verdict.partition(":")
    first = f"**{word}**: {md_text(rest)}" if rest else f"**{word}**"
    lines = [first, "", _context(report), ""]
    if report.slos:
        lines.append(_md_row(astuple(fmt.HEADERS)))
        lines.append("|---|---|--:|--:|--:|--:|---|")
        for slo in report.slos:
            cells = astuple(fmt.row(slo))
            lines.append(_md_row((md_text(cells[0]), *cells[1:])))
    else:
        lines.append("No SLOs were evaluated.")
    for slo in fmt.notable(report):
        lines += ["", _md_finding(slo)]
    return "\n".join(lines) + "\n"


def console_table(report: SloReport) -> str:
    """Fixed-width columns for a terminal, names left and numbers right, verdict last
    (no trailing newline: it is meant for print())."""
    rows = [astuple(fmt.HEADERS)] + [astuple(fmt.row(s)) for s in report.slos]
    rows = [tuple(" ".join(fmt.printable(cell).split()) for cell in r) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    left = {0, 1, 6}
    lines = []
    for r in rows:
        cells = [
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.append(fmt.printable(fmt.verdict(report)))
    return "\n".join(lines)
