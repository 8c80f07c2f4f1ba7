"""The report's plots: drawn on matplotlib's Agg canvas (no pyplot, no display) into PNG bytes.

Time runs along x as wall-clock UTC; fault windows are shaded and labelled on every plot;
a plot without data becomes a "no data" placeholder rather than an error.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, partial

from matplotlib import dates as mdates
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import blended_transform_factory

from slo.results import Point, Series, SloReport, SloResult, Window

log = logging.getLogger(__name__)

LATENCY_LINES_S = ((1.0, "1 s: goal threshold"), (3.0, "3 s: card/substitution threshold"))
BURN_LINES = (
    (1.0, "1x: spending exactly the budget"),
    (6.0, "6x: slow-burn alert"),
    (14.4, "14.4x: fast-burn alert"),
)
SYMLOG_ABOVE = 50.0
"""Burn rates past this are drawn on a symlog axis so 1x, 6x and 14.4x stay readable."""
LATENCY_TITLE = "Source → fan latency"
SIZE_IN = (11.0, 4.4)
LABEL_CHARS = 48
HEADROOM = 1.25
"""Space above the highest line, where fault-window labels go."""


@dataclass(frozen=True)
class Plot:
    title: str
    png: bytes
    has_data: bool


@cache
def _drawable() -> frozenset[int]:
    """The characters the default font has glyphs for (matplotlib warns about any other)."""
    path = font_manager.findfont(font_manager.FontProperties())
    return frozenset(FT2Font(path).get_charmap())


def mpl_text(text: str) -> str:
    """Free text as matplotlib draws it literally: one short line, `$` not read as math,
    characters the font cannot draw (emoji, CJK, control codes) shown as U+FFFD."""
    line = " ".join(text.split())
    if len(line) > LABEL_CHARS:
        line = line[: LABEL_CHARS - 1] + "…"
    drawable = _drawable()
    missing = "\ufffd" if 0xFFFD in drawable else "?"
    line = "".join(c if ord(c) in drawable else missing for c in line)
    return line.replace("$", r"\$")


def _x(t: float) -> float:
    moment = datetime.fromtimestamp(t, tz=UTC)
    return float(mdates.date2num(moment))  # type: ignore[no-untyped-call]


def _points(series: Series) -> list[Point]:
    """Points with a time, in time order."""
    return sorted((p for p in series.points if math.isfinite(p.t)), key=lambda p: p.t)


def _xy(series: Series, scale: float) -> tuple[list[float], list[float]]:
    """Points in time order; values that are not finite become gaps."""
    points = _points(series)
    ys = [p.value * scale if math.isfinite(p.value) else math.nan for p in points]
    return [_x(p.t) for p in points], ys


def _has_data(series: Iterable[Series]) -> bool:
    return any(
        math.isfinite(p.t) and (math.isfinite(p.value) or p.value == math.inf)
        for s in series
        for p in s.points
    )


def _figure() -> tuple[Figure, Axes]:
    figure = Figure(figsize=SIZE_IN, dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _placeholder(title: str, message: str) -> Plot:
    figure = Figure(figsize=(SIZE_IN[0], 1.6), dpi=100)
    FigureCanvasAgg(figure)
    figure.text(0.5, 0.68, mpl_text(title), ha="center", va="center", fontsize=12)
    figure.text(0.5, 0.32, mpl_text(message), ha="center", va="center", fontsize=16, color="0.4")
    return Plot(title=title, png=_png(figure), has_data=False)


def _lines(axes: Axes, series: Sequence[Series], scale: float) -> float:
    """One line per series (empty ones named in the legend); returns the largest value drawn.

    +Inf values (a quantile past the histogram's last bucket) are drawn as triangles along
    the top edge: off the scale, not missing."""
    top = 0.0
    along_top = blended_transform_factory(axes.transData, axes.transAxes)
    off_scale_label = "off the scale (+Inf)"
    for one in series:
        xs, ys = _xy(one, scale)
        label = mpl_text(one.label) if _has_data([one]) else f"{mpl_text(one.label)} (no data)"
        marker = "o" if len(xs) < 30 else None
        (line,) = axes.plot(xs, ys, label=label, linewidth=1.6, marker=marker, markersize=3)
        top = max([top, *(y for y in ys if math.isfinite(y))])
        off = [_x(p.t) for p in _points(one) if p.value == math.inf]
        if off:
            axes.plot(
                off,
                [0.97] * len(off),
                linestyle="none",
                marker="^",
                markersize=6,
                color=line.get_color(),
                transform=along_top,
                zorder=4,
                label=off_scale_label,
            )
            off_scale_label = "_"
    return top


def _references(axes: Axes, lines: Sequence[tuple[float, str]]) -> None:
    to_axes = blended_transform_factory(axes.transAxes, axes.transData)
    styles = ("--", "-.", ":")
    for (value, label), style in zip(lines, styles, strict=False):
        axes.axhline(value, color="0.25", linestyle=style, linewidth=1.1, label=mpl_text(label))
        axes.text(0.004, value, mpl_text(label), transform=to_axes, va="bottom", fontsize=8)


def _shade(axes: Axes, windows: Sequence[Window]) -> None:
    to_data_x = blended_transform_factory(axes.transData, axes.transAxes)
    for index, window in enumerate(w for w in windows if math.isfinite(w.start)):
        start = _x(window.start)
        end = _x(window.end) if math.isfinite(window.end) and window.end > window.start else start
        legend = "fault window" if index == 0 else None
        if end > start:
            axes.axvspan(start, end, color="tab:red", alpha=0.13, linewidth=0, label=legend)
        else:
            axes.axvline(start, color="tab:red", alpha=0.5, label=legend)
        axes.text(
            start,
            0.94 - 0.06 * (index % 4),
            " " + mpl_text(window.label),
            transform=to_data_x,
            va="top",
            ha="left",
            fontsize=8,
            color="darkred",
            clip_on=True,
            bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1.0},
        )


def _time_axis(axes: Axes, series: Sequence[Series], windows: Sequence[Window]) -> None:
    times = [p.t for s in series for p in s.points if math.isfinite(p.t)]
    times += [t for w in windows for t in (w.start, w.end) if math.isfinite(t)]
    low, high = min(times), max(times)
    pad = max((high - low) * 0.02, 30.0)
    axes.set_xlim(_x(low - pad), _x(high + pad))
    locator = mdates.AutoDateLocator(tz=UTC, minticks=5, maxticks=9)  # type: ignore[no-untyped-call]
    for unit in (mdates.MINUTELY, mdates.SECONDLY):  # 2-minute steps too, not only 1 and 5
        locator.intervald[unit] = [1, 2, 5, 10, 15, 20, 30]
    axes.xaxis.set_major_locator(locator)
    clock = mdates.DateFormatter("%H:%M:%S", tz=UTC)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(clock)
    axes.set_xlabel("time (UTC)")
    axes.grid(True, alpha=0.3)


def _times(value: float, _position: float | None) -> str:
    return f"{value:g}x"


def _finish(figure: Figure, axes: Axes, title: str) -> bytes:
    axes.set_title(mpl_text(title), loc="left")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return _png(figure)


def latency_plot(report: SloReport) -> Plot:
    """Source -> fan latency (report.latency, seconds, drawn in ms) with the 1 s and 3 s lines."""
    title = LATENCY_TITLE
    if not _has_data(report.latency):
        return _placeholder(title, "no data: no latency series in this report")
    figure, axes = _figure()
    top = _lines(axes, report.latency, scale=1000.0)
    _references(axes, [(s * 1000.0, label) for s, label in LATENCY_LINES_S])
    _shade(axes, report.windows)
    _time_axis(axes, report.latency, report.windows)
    axes.set_ylim(0, max(top, LATENCY_LINES_S[-1][0] * 1000.0) * HEADROOM)
    axes.set_ylabel("latency (ms)")
    return Plot(title=title, png=_finish(figure, axes, title), has_data=True)


def burn_rate_plot(slo: SloResult, windows: Sequence[Window]) -> Plot:
    """An SLO's burn rate over time, with the 1x, 6x and 14.4x lines."""
    title = f"Burn rate: {slo.name}"
    if not _has_data(slo.burn_rate):
        return _placeholder(title, "no data: no burn-rate series for this SLO")
    figure, axes = _figure()
    top = _lines(axes, slo.burn_rate, scale=1.0)
    _references(axes, BURN_LINES)
    _shade(axes, windows)
    _time_axis(axes, slo.burn_rate, windows)
    if top > SYMLOG_ABOVE:
        axes.set_yscale("symlog", linthresh=1.0)
        axes.set_ylim(0, top * 10)  # a decade of headroom on a log scale
        axes.set_ylabel("burn rate (x budget, symlog scale)")
    else:
        axes.set_ylim(0, max(top, BURN_LINES[-1][0]) * HEADROOM)
        axes.set_ylabel("burn rate (x budget)")
    axes.yaxis.set_major_formatter(FuncFormatter(_times))
    return Plot(title=title, png=_finish(figure, axes, title), has_data=True)


def _guarded(title: str, draw: Callable[[], Plot]) -> Plot:
    """A plot that cannot be drawn becomes a placeholder saying why; the report still ships."""
    try:
        return draw()
    except Exception as error:
        log.exception("could not draw %s", title)
        return _placeholder(title, f"could not draw this plot: {type(error).__name__}")


def plots(report: SloReport) -> list[Plot]:
    """The latency plot, then one burn-rate plot per SLO, in report order."""
    drawn = [_guarded(LATENCY_TITLE, partial(latency_plot, report))]
    for slo in report.slos:
        draw = partial(burn_rate_plot, slo, report.windows)
        drawn.append(_guarded(f"Burn rate: {slo.name}", draw))
    return drawn


@dataclass(frozen=True)
class Firing:
    """An alert firing from `start` to `end` (unix seconds), e.g. for a drill's timeline."""

    alert: str
    start: float
    end: float


def alert_timeline_plot(
    firings: Sequence[Firing], windows: Sequence[Window], span: tuple[float, float]
) -> Plot:
    """One row per alert, a bar while it fired, fault windows shaded behind."""
    title = "Alerts firing"
    names = sorted({f.alert for f in firings})
    if not names:
        return _placeholder(title, "no alert fired")
    figure, axes = _figure()
    for row, name in enumerate(names):
        for f in (f for f in firings if f.alert == name):
            axes.barh(
                row,
                _x(max(f.end, f.start + 1)) - _x(f.start),
                left=_x(f.start),
                height=0.5,
                color="tab:orange",
            )
    axes.set_yticks(range(len(names)), [mpl_text(n) for n in names])
    axes.set_ylim(-0.75, len(names) - 0.25)
    _shade(axes, windows)
    edges = Series("span", (Point(span[0], 0.0), Point(span[1], 0.0)))
    _time_axis(axes, [edges], windows)
    return Plot(title=title, png=_finish(figure, axes, title), has_data=True)
