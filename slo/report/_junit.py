"""junit.xml: one test case per SLO, read by GitLab, Jenkins and GitHub test reporters."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from slo.report import _format as fmt
from slo.results import SloReport, SloResult

SUITE = "gameday slo"
# Characters XML 1.0 cannot carry at all; ElementTree would write them and break the file.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 forbids (ElementTree escapes the rest)."""
    return _NOT_XML.sub("\ufffd", fmt.printable(text))


def _timestamp(started_at: str) -> str:
    """JUnit's timestamp form (UTC, to the second, no zone) when `started_at` is RFC 3339."""
    try:
        moment = datetime.fromisoformat(started_at)
    except ValueError:
        return started_at
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds")


def _body(slo: SloResult) -> str:
    return "\n".join(f"{label}: {value}" for label, value in fmt.facts(slo)) + "\n"


def _properties(parent: ET.Element, pairs: list[tuple[str, str]]) -> None:
    properties = ET.SubElement(parent, "properties")
    for name, value in pairs:
        ET.SubElement(properties, "property", name=name, value=xml_text(value))


def _testcase(suite: ET.Element, slo: SloResult) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=xml_text(f"slo.{slo.service}"),
        name=xml_text(slo.name),
        time="0",
    )
    if slo.status == "fail":
        failure = ET.SubElement(case, "failure", message=xml_text(fmt.headline(slo)))
        failure.set("type", "SloFailed")
        failure.text = xml_text(_body(slo))
        return
    if fmt.finite(slo.observed) is None:
        ET.SubElement(case, "skipped", message=xml_text(f"{slo.name}: no data"))
    if slo.status == "warning":
        out = ET.SubElement(case, "system-out")
        out.text = xml_text(f"WARNING {fmt.headline(slo)}\n{_body(slo)}")


def render_junit(report: SloReport) -> str:
    """The JUnit XML document, declaration included.

    An SLO that failed is a <failure type="SloFailed">; a warning passes and says why in
    <system-out>; an SLO that passed or warned without any data is <skipped>. Test cases
    take no time of their own (time="0"): the suite's time is the evaluated range.
    """
    slos = report.slos
    failures = sum(1 for s in slos if s.status == "fail")
    skipped = sum(1 for s in slos if s.status != "fail" and fmt.finite(s.observed) is None)
    totals = {
        "tests": str(len(slos)),
        "failures": str(failures),
        "errors": "0",
        "skipped": str(skipped),
        "time": f"{report.range_s:.3f}",
    }
    root = ET.Element("testsuites", {"name": SUITE, **totals})
    suite = ET.SubElement(root, "testsuite", {"name": SUITE, **totals})
    suite.set("timestamp", xml_text(_timestamp(report.started_at)))
    _properties(
        suite,
        [
            ("run_id", report.run_id),
            ("target", report.target),
            ("time_scale", f"{report.time_scale:g}"),
            ("started_at", report.started_at),
            ("finished_at", report.finished_at),
            ("prometheus", report.prometheus),
            ("passed", "true" if report.passed else "false"),
        ],
    )
    for slo in slos:
        _testcase(suite, slo)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
