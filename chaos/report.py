"""The drill report CI gates on: DIR/report.json (DESIGN.md), junit.xml (one test case per
check), summary.md, report.html (latency with fault windows shaded, the alert timeline),
and per drill the SLO report of `slo.report` in DIR/<drill>/."""

from __future__ import annotations

import base64
import html
import json
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaos.drill import DrillResult
from slo.report import write_report
from slo.report._plots import Plot, alert_timeline_plot, latency_plot


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class DrillRun:
    target: str
    time_scale: float
    started_at: float
    finished_at: float = 0.0
    drills: list[DrillResult] = field(default_factory=list)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def passed(self) -> bool:
        return bool(self.drills) and all(d.passed for d in self.drills)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "target": self.target,
            "time_scale": self.time_scale,
            "passed": self.passed,
            "drills": [d.to_json() for d in self.drills],
        }


def junit(run: DrillRun) -> str:
    root = ET.Element("testsuites", name="gameday drills")
    for drill in run.drills:
        failures = sum(not c.passed for c in drill.checks) + (drill.aborted is not None)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"drill {drill.name}",
            tests=str(len(drill.checks) + (drill.aborted is not None)),
            failures=str(failures),
            errors="0",
            time=f"{drill.finished_at - drill.started_at:.1f}",
            timestamp=_iso(drill.started_at).rstrip("Z"),
        )
        if drill.aborted is not None:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"drill.{drill.name}",
                name="completed without an abort",
            )
            ET.SubElement(case, "failure", message=drill.aborted, type="DrillAborted")
        for check in drill.checks:
            case = ET.SubElement(
                suite, "testcase", classname=f"drill.{drill.name}", name=check.name
            )
            if not check.passed:
                failure = ET.SubElement(
                    case,
                    "failure",
                    type="CheckFailed",
                    message=f"{check.name}: expected {check.expected}, observed {check.observed}",
                )
                failure.text = json.dumps(check.evidence, indent=2, default=str)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def summary(run: DrillRun) -> str:
    verdict = "PASS" if run.passed else "FAIL"
    failed = [d.name for d in run.drills if not d.passed]
    lines = [
        f"**{verdict}**: {len(run.drills) - len(failed)} of {len(run.drills)} drills passed"
        + (f"; failed: {', '.join(failed)}" if failed else ""),
        "",
        f"Run {run.run_id} on {run.target}, time scale {run.time_scale:g}x.",
        "",
    ]
    for drill in run.drills:
        lines += [
            f"### {drill.name}: {'PASS' if drill.passed else 'FAIL'} "
            f"({drill.finished_at - drill.started_at:.0f} s)",
            "",
        ]
        if drill.aborted:
            lines += [f"Aborted: {drill.aborted}", ""]
        for fault in drill.faults:
            lines.append(
                f"- fault `{fault.name}`: {fault.injected_at} -> {fault.reverted_at}"
                + (f" ({fault.error})" if fault.error else "")
            )
        lines += ["", "| check | expected | observed | result |", "|---|---|---|---|"]
        lines += [
            f"| {c.name} | {c.expected} | {c.observed} | {'pass' if c.passed else '**FAIL**'} |"
            for c in drill.checks
        ]
        lines.append("")
    return "\n".join(lines)


def _img(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode()
    return f'<img alt="{html.escape(plot.title)}" src="data:image/png;base64,{data}">'


def page(run: DrillRun) -> str:
    e = html.escape
    parts = [
        f"<h1>gameday drills: {'PASS' if run.passed else 'FAIL'}</h1>",
        f"<p>Run {e(run.run_id)} on {e(run.target)}, time scale {run.time_scale:g}x.</p>",
    ]
    for drill in run.drills:
        parts.append(f"<h2>{e(drill.name)}: {'PASS' if drill.passed else 'FAIL'}</h2>")
        if drill.aborted:
            parts.append(f"<p class=fail>Aborted: {e(drill.aborted)}</p>")
        rows = "".join(
            f"<tr class={'pass' if c.passed else 'fail'}><td>{e(c.name)}</td>"
            f"<td>{e(c.expected)}</td><td>{e(c.observed)}</td>"
            f"<td>{'pass' if c.passed else 'FAIL'}</td></tr>"
            for c in drill.checks
        )
        parts.append(
            "<table><tr><th>check</th><th>expected</th><th>observed</th>"
            f"<th>result</th></tr>{rows}</table>"
        )
        if drill.slo_report is not None:
            parts.append(_img(latency_plot(drill.slo_report)))
            parts.append(f'<p><a href="{e(drill.name)}/report.html">SLOs of this drill</a></p>')
        parts.append(
            _img(
                alert_timeline_plot(
                    drill.alerts, drill.windows, (drill.started_at, drill.finished_at)
                )
            )
        )
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}"
        ".fail{color:#b00020}img{max-width:100%}"
    )
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>gameday drills</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )


def write(run: DrillRun, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "report.json",
        "junit": out / "junit.xml",
        "markdown": out / "summary.md",
        "html": out / "report.html",
    }
    paths["json"].write_text(json.dumps(run.to_json(), indent=2))
    paths["junit"].write_text(junit(run))
    paths["markdown"].write_text(summary(run))
    for drill in run.drills:
        if drill.slo_report is not None:
            write_report(drill.slo_report, out / drill.name)
        (out / drill.name).mkdir(exist_ok=True)
        (out / drill.name / "receipts.json").write_text(json.dumps(drill.receipts))
    paths["html"].write_text(page(run))
    return paths
