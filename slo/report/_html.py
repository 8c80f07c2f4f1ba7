"""report.html: one self-contained page (inline style, plots as PNG data URIs, no fetches)."""

from __future__ import annotations

import base64
import html
from dataclasses import astuple

from slo.report import _format as fmt
from slo.report._plots import Plot, plots
from slo.results import SloReport, SloResult, Window

# Nothing may load from anywhere: a report opened from a CI artifact stays offline and inert.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em;
       padding: 0 1em; color: #1d1d1f; }
.verdict { font-size: 1.2em; padding: .7em 1em; border-radius: 6px; border: 2px solid; }
.verdict.pass { background: #e8f5e9; border-color: #2e7d32; }
.verdict.fail { background: #fdecea; border-color: #c62828; }
.meta { color: #555; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: .3em .7em; vertical-align: top; }
th { background: #f4f4f4; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td small { color: #555; }
tr.fail td.status { color: #b71c1c; font-weight: bold; }
tr.warning td.status { color: #8a5a00; font-weight: bold; }
.finding { border-left: 4px solid #ccc; padding: .1em 1em; margin: 1em 0; }
.finding.fail { border-color: #c62828; }
.finding.warning { border-color: #e0a000; }
.detail { white-space: pre-line; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
""".strip()
_NUMERIC = {2, 3, 4, 5}


def escape(text: str) -> str:
    """Text as inert HTML: markup escaped (quotes too), control codes shown as U+FFFD."""
    return html.escape(fmt.printable(text), quote=True)


def _cell(index: int, text: str) -> str:
    if index == 6:
        return f'<td class="status">{escape(text)}</td>'
    if index in _NUMERIC:
        return f'<td class="num">{escape(text)}</td>'
    return f"<td>{escape(text)}</td>"


def _slo_row(slo: SloResult) -> str:
    cells = astuple(fmt.row(slo))
    name = f"<td><strong>{escape(slo.name)}</strong>"
    if slo.description:
        name += f"<br><small>{escape(slo.description)}</small>"
    rest = "".join(_cell(i, text) for i, text in enumerate(cells) if i > 0)
    return f'<tr class="{escape(slo.status)}">{name}</td>{rest}</tr>'


def _table(report: SloReport) -> str:
    if not report.slos:
        return "<p>No SLOs were evaluated.</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in astuple(fmt.HEADERS))
    body = "\n".join(_slo_row(s) for s in report.slos)
    return (
        f'<table class="slos">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>'
    )


def _finding(slo: SloResult) -> str:
    facts = "".join(
        f"<dt>{escape(label)}</dt><dd>{escape(value)}</dd>"
        for label, value in fmt.facts(slo)
        if label not in {"description", "detail"}
    )
    parts = [
        f'<div class="finding {escape(slo.status)}">',
        f"<h3>{escape(slo.name)}: {escape(fmt.STATUS_WORD[slo.status])}</h3>",
    ]
    if slo.description:
        parts.append(f"<p>{escape(slo.description)}</p>")
    if slo.detail:
        parts.append(f'<p class="detail">{escape(slo.detail)}</p>')
    parts.append(f"<dl>{facts}</dl></div>")
    return "\n".join(parts)


def _window_row(window: Window) -> str:
    cells = (fmt.clock(window.start), fmt.clock(window.end))
    span = fmt.duration(window.end - window.start)
    return (
        f"<tr><td>{escape(window.label)}</td>"
        + "".join(f"<td>{escape(c)}</td>" for c in cells)
        + f'<td class="num">{escape(span)}</td></tr>'
    )


def _windows(report: SloReport) -> str:
    if not report.windows:
        return "<p>No fault windows in this run.</p>"
    rows = "\n".join(_window_row(w) for w in report.windows)
    head = "<tr><th>fault</th><th>from</th><th>to</th><th>for</th></tr>"
    return f'<table class="windows">\n<thead>{head}</thead>\n<tbody>\n{rows}\n</tbody>\n</table>'


def _figure(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    title = escape(plot.title)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{title}">'
        f"<figcaption>{title}</figcaption></figure>"
    )


def _meta(report: SloReport) -> str:
    return (
        f'<p class="meta">Run <code>{escape(report.run_id)}</code> against '
        f"<code>{escape(report.target)}</code>, time scale {report.time_scale:g}x: "
        f"{escape(report.started_at)} to {escape(report.finished_at)} "
        f"({escape(fmt.duration(report.range_s))}), Prometheus {escape(report.prometheus)}.</p>"
    )


def render_html(report: SloReport) -> str:
    """The whole page: verdict banner, SLO table, findings, fault windows, then the plots."""
    word = "PASS" if report.passed else "FAIL"
    _, _, rest = fmt.verdict(report).partition(word)
    findings = [_finding(s) for s in fmt.notable(report)]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>gameday SLO report: {word} ({escape(report.run_id)})</title>",
        f"<style>\n{_STYLE}\n</style>",
        "</head>",
        "<body>",
        "<h1>gameday SLO report</h1>",
        f'<p class="verdict {word.lower()}"><strong>{word}</strong>{escape(rest)}</p>',
        _meta(report),
        "<h2>SLOs</h2>",
        _table(report),
        *(["<h2>Findings</h2>", *findings] if findings else []),
        "<h2>Fault windows</h2>",
        _windows(report),
        "<h2>Plots</h2>",
        *(_figure(p) for p in plots(report)),
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"
