"""
The "Models" page as server-rendered HTML: per model, an inline SVG chart of the gate metric
(one point per training, marked by its outcome), the version served, and a table of the runs
with the chart's numbers. No JavaScript; every value from the database is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote

from airflow_provider_predone.plugins.history import (
    APPROVED,
    AWAITING,
    NOT_SWITCHED,
    REFUSED,
    REJECTED,
    SWITCHED,
    TRAINED,
    UNDECIDED,
    ModelHistory,
    ModelRun,
    TaskRef,
)

#: outcome → (colour, marker shape, CSS class); shapes differ too, so colour is not the only cue
OUTCOMES: dict[str, tuple[str, str, str]] = {
    TRAINED: ("#1a73e8", "diamond", "trained"),
    SWITCHED: ("#188038", "circle", "switched"),
    APPROVED: ("#188038", "square", "approved"),
    REFUSED: ("#d93025", "triangle", "refused"),
    REJECTED: ("#d93025", "square", "rejected"),
    NOT_SWITCHED: ("#80868b", "triangle", "not-switched"),
    AWAITING: ("#e37400", "ring", "awaiting"),
    UNDECIDED: ("#80868b", "ring", "undecided"),
}

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 70, 16, 16, 44

STYLE = """
:root { color-scheme: light dark; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; padding: 16px;
       color: #202124; background: #fff; }
@media (prefers-color-scheme: dark) { body { color: #e8eaed; background: #1f1f1f; }
  .muted { color: #9aa0a6 !important; } th { background: #2d2d2d !important; } a { color: #8ab4f8; } }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 0; }
section.model { border: 1px solid #dadce0; border-radius: 8px; padding: 12px 16px; margin: 16px 0; }
.muted { color: #5f6368; } code { font-size: 12px; word-break: break-all; }
.summary { display: flex; flex-wrap: wrap; gap: 4px 20px; margin: 6px 0 8px; }
.chart { width: 100%; max-width: 760px; height: auto; display: block; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; margin: 4px 0 10px; }
.legend svg { vertical-align: middle; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #e8eaed; vertical-align: top; }
th { background: #f1f3f4; font-weight: 600; white-space: nowrap; } td.num { text-align: right;
  font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 0 6px; border-radius: 10px; color: #fff; font-size: 12px;
  white-space: nowrap; }
nav.models a { margin-right: 12px; }
@media (max-width: 640px) {
  body { padding: 8px; } section.model { padding: 8px; }
  table, thead, tbody, tr, td { display: block; } thead { display: none; }
  tr { border-bottom: 2px solid #dadce0; padding: 4px 0; } td { border: 0; padding: 2px 4px; }
  td.num { text-align: left; }
  td::before { content: attr(data-label) ": "; font-weight: 600; }
}
"""


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else ""


def moment(value: str) -> str:
    """An ISO time (a reviewer's answer) as the page writes times; anything else as it is."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.utcoffset() is not None:
        parsed = parsed.astimezone(UTC)
    return when(parsed)


def number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def ui_links(ui_base: str, task: TaskRef) -> tuple[str, str]:
    """The Airflow UI's addresses of a task's DAG run and of the task in it."""
    run = f"{ui_base}/dags/{quote(task.dag_id, safe='')}/runs/{quote(task.run_id, safe='')}"
    tasks = f"{run}/tasks/{quote(task.task_id, safe='')}"
    return run, tasks + (f"/mapped/{task.map_index}" if task.map_index >= 0 else "")


def marker(shape: str, x: float, y: float, colour: str, size: float = 6.0) -> str:
    """An SVG marker of ``shape`` centred on ``(x, y)``."""
    s = size
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{s:.1f}" fill="{colour}"/>'
    if shape == "ring":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{s:.1f}" fill="none" stroke="{colour}" stroke-width="2.5"/>'
    if shape == "square":
        return f'<rect x="{x - s:.1f}" y="{y - s:.1f}" width="{2 * s:.1f}" height="{2 * s:.1f}" fill="{colour}"/>'
    if shape == "triangle":
        points = f"{x:.1f},{y - s * 1.2:.1f} {x - s * 1.1:.1f},{y + s * 0.8:.1f} {x + s * 1.1:.1f},{y + s * 0.8:.1f}"
        return f'<polygon points="{points}" fill="{colour}"/>'
    points = f"{x:.1f},{y - s * 1.3:.1f} {x + s:.1f},{y:.1f} {x:.1f},{y + s * 1.3:.1f} {x - s:.1f},{y:.1f}"
    return f'<polygon points="{points}" fill="{colour}"/>'


def decision_text(run: ModelRun) -> str:
    """Who decided what and when, in words (the chart's tooltip and the table say the same)."""
    parts = [run.outcome]
    if run.decided_by:
        parts.append(f"by {run.decided_by}")
    if run.decided_at and run.outcome not in (TRAINED, UNDECIDED, AWAITING):
        parts.append(f"at {moment(run.decided_at)}")
    return " ".join(parts)


def chart(history: ModelHistory) -> str:
    """The gate metric over time: one marker per (re)training, by outcome; ticks for the served model."""
    metric = history.gate_metric
    runs = history.runs
    values: list[float | None] = [run.metrics.get(metric) if metric else None for run in runs]
    known: list[float] = [v for v in values if v is not None]
    known += [run.previous_metrics[metric] for run in runs if metric and metric in run.previous_metrics]
    low, high = (min(known), max(known)) if known else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 0.05 * (abs(low) or 1), high + 0.05 * (abs(high) or 1)
    pad = (high - low) * 0.1
    low, high = low - pad, high + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(index: int) -> float:
        return LEFT + (plot_w / 2 if len(runs) == 1 else plot_w * index / (len(runs) - 1))

    def y_of(value: float) -> float:
        return TOP + plot_h * (high - value) / (high - low)

    label = escape(metric or "no metric")
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{label} of {escape(history.title)} over time" data-metric="{label}">',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#9aa0a6"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#9aa0a6"/>',
    ]
    for step in range(5):
        tick = low + (high - low) * step / 4
        y = y_of(tick)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e8eaed"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="currentColor">'
            f"{number(tick)}</text>"
        )
    parts.append(
        f'<text x="14" y="{TOP + plot_h / 2:.1f}" font-size="12" fill="currentColor" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2:.1f})" text-anchor="middle">{label}</text>'
    )
    line = [(x_of(i), y_of(v)) for i, v in enumerate(values) if v is not None]
    if len(line) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in line)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#9aa0a6" stroke-width="1.5"/>')
    every = max(1, len(runs) // 6)
    # Retrainings on one day (a test, a catch-up) are told apart by their time.
    days = {run.at.date() for run in runs}
    date_format = "%Y-%m-%d" if len(days) == len(runs) else "%m-%d %H:%M"
    for index, (run, value) in enumerate(zip(runs, values, strict=True)):
        x = x_of(index)
        colour, shape, css = OUTCOMES.get(run.outcome, OUTCOMES[UNDECIDED])
        previous = run.previous_metrics.get(metric) if metric else None
        if previous is not None:
            y = y_of(previous)
            parts.append(
                f'<line class="served-before" x1="{x - 9:.1f}" y1="{y:.1f}" x2="{x + 9:.1f}" y2="{y:.1f}" '
                f'stroke="#5f6368" stroke-width="2" stroke-dasharray="3 2"/>'
            )
        y = y_of(value) if value is not None else float(TOP + plot_h)
        title = f"{when(run.at)} · {run.kind}"
        if run.version is not None:
            title += f" version {run.version}"
        title += f" · {label} {number(value)}"
        if previous is not None:
            title += f" (served model {number(previous)})"
        title += f" · {decision_text(run)}"
        if run.reason:
            title += f" · gate: {run.reason}"
        parts.append(
            f'<g class="point {css}" data-kind="{escape(run.kind)}" data-outcome="{escape(run.outcome)}" '
            f'data-value="{"" if value is None else value}" data-version="{escape(str(run.version or ""))}">'
            f"<title>{escape(title)}</title>{marker(shape, x, y, colour)}</g>"
        )
        if index % every == 0 or index == len(runs) - 1:
            align = "start" if index == 0 and len(runs) > 1 else "end" if index == len(runs) - 1 > 0 else "middle"
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" font-size="11" text-anchor="{align}" '
                f'fill="currentColor">{run.at.strftime(date_format)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def legend(outcomes: Sequence[str]) -> str:
    items = []
    for outcome in outcomes:
        colour, shape, _ = OUTCOMES[outcome]
        items.append(
            f'<span><svg width="16" height="16">{marker(shape, 8, 8, colour, 5)}</svg> {escape(outcome)}</span>'
        )
    items.append(
        '<span><svg width="18" height="16"><line x1="1" y1="8" x2="17" y2="8" stroke="#5f6368" stroke-width="2" '
        'stroke-dasharray="3 2"/></svg> served model on the same data</span>'
    )
    return f'<div class="legend">{"".join(items)}</div>'


def badge(outcome: str) -> str:
    colour = OUTCOMES.get(outcome, OUTCOMES[UNDECIDED])[0]
    return f'<span class="badge" style="background:{colour}">{escape(outcome)}</span>'


def runs_table(history: ModelHistory, ui_base: str) -> str:
    metric = history.gate_metric
    label = escape(metric or "metric")
    head = (
        f"<tr><th>When</th><th>Event</th><th>{label}</th><th>{label} of the served model</th>"
        "<th>Other metrics (retrained / served)</th><th>Outcome</th><th>Rows scored</th><th>Links</th></tr>"
    )
    rows = []
    for run in reversed(history.runs):
        new = run.metrics.get(metric) if metric else None
        old = run.previous_metrics.get(metric) if metric else None
        others = sorted((set(run.metrics) | set(run.previous_metrics)) - {metric})
        other = "<br>".join(
            f"{escape(name)} {number(run.metrics.get(name))} / {number(run.previous_metrics.get(name))}"
            for name in others
        )
        event = escape(run.kind) + (f" · version {run.version}" if run.version is not None else "")
        if run.job_id:
            event += f'<br><span class="muted">{escape(str(run.job_id))}</span>'
        outcome = badge(run.outcome)
        details = []
        if run.decided_by:
            details.append(f"by {escape(run.decided_by)}")
        if run.decided_at and run.outcome not in (TRAINED, UNDECIDED, AWAITING):
            details.append(f"at {escape(moment(run.decided_at))}")
        if run.reason:
            details.append(f"gate: {escape(run.reason)}")
        if details:
            outcome += f'<br><span class="muted">{"<br>".join(details)}</span>'
        run_url, task_url = ui_links(ui_base, run.task)
        links = [
            f'<a href="{escape(run_url)}" target="_top">DAG run</a>',
            f'<a href="{escape(task_url)}" target="_top">{escape(run.task.task_id)}</a>',
        ]
        if run.decided_in is not None and run.decided_in != run.task:
            _, decided_url = ui_links(ui_base, run.decided_in)
            links.append(f'<a href="{escape(decided_url)}" target="_top">{escape(run.decided_in.task_id)}</a>')
        scored = f"{run.rows_scored:,}" if run.rows_scored is not None else "—"
        if run.rows_scored is not None and run.scored_version is not None:
            scored += f'<br><span class="muted">by version {run.scored_version}</span>'
        rows.append(
            f'<tr class="run" data-outcome="{escape(run.outcome)}" data-kind="{escape(run.kind)}">'
            f'<td data-label="When">{when(run.at)}</td><td data-label="Event">{event}</td>'
            f'<td data-label="{label}" class="num">{number(new)}</td>'
            f'<td data-label="{label} of the served model" class="num">{number(old)}</td>'
            f'<td data-label="Other metrics">{other or "—"}</td><td data-label="Outcome">{outcome}</td>'
            f'<td data-label="Rows scored" class="num">{scored}</td>'
            f'<td data-label="Links">{" · ".join(links)}</td></tr>'
        )
    return f'<div class="table-wrap"><table><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table></div>'


def aitems_table(history: ModelHistory, ui_base: str) -> str:
    rows = []
    for run in reversed(history.runs):
        run_url, task_url = ui_links(ui_base, run.task)
        rows.append(
            f'<tr class="run" data-outcome="{escape(run.outcome)}" data-kind="{escape(run.kind)}">'
            f'<td data-label="When">{when(run.at)}</td>'
            f'<td data-label="Version">{escape(str(run.version or "—"))}</td>'
            f'<td data-label="Links"><a href="{escape(run_url)}" target="_top">DAG run</a> · '
            f'<a href="{escape(task_url)}" target="_top">{escape(run.task.task_id)}</a></td></tr>'
        )
    head = "<tr><th>When</th><th>Version</th><th>Links</th></tr>"
    return f'<div class="table-wrap"><table><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table></div>'


def anchor(history: ModelHistory) -> str:
    return "m-" + "".join(c if c.isalnum() else "-" for c in history.uri)


def model_section(history: ModelHistory, ui_base: str, page_url: str) -> str:
    # AiTEMS events say which version a training made, not which one recommendations use.
    what = "Serving version" if history.vendor == "predone" else "Latest trained version"
    served = (
        f'{what} <strong class="served-version">{escape(str(history.served_version))}</strong>'
        + (f" since {when(history.served_since)}" if history.served_since else "")
        if history.served_version is not None
        else "Served version not known"
    )
    retrains = len(history.retrains)
    summary = [f"<span>{served}</span>"]
    if history.vendor == "predone":
        summary.append(f"<span>{retrains} retraining{'s' if retrains != 1 else ''}</span>")
        summary.append(f"<span>gate metric: <strong>{escape(history.gate_metric or 'none found')}</strong></span>")
    link = f"{page_url}?model={quote(history.uri, safe='')}"
    parts = [
        f'<section class="model" id="{anchor(history)}" data-uri="{escape(history.uri)}" '
        f'data-served-version="{escape(str(history.served_version or ""))}">',
        f'<h2><a href="{escape(link)}">{escape(history.title)}</a></h2>',
        f'<code class="muted">{escape(history.uri)}</code>',
        f'<div class="summary">{"".join(summary)}</div>',
    ]
    if history.vendor == "predone":
        shown = [o for o in OUTCOMES if any(run.outcome == o for run in history.runs)]
        parts += [chart(history), legend(shown), runs_table(history, ui_base)]
    else:
        parts.append(aitems_table(history, ui_base))
    parts.append("</section>")
    return "".join(parts)


def page(histories: Sequence[ModelHistory], ui_base: str, page_url: str, single: bool = False) -> str:
    """
    The whole page.

    :param ui_base: the Airflow UI's root path (links to DAG runs and tasks).
    :param page_url: this page's path (links to one model's page).
    :param single: whether one model was asked for (a link back to all models is shown).
    """
    body = [
        "<h1>Models</h1>",
        '<p class="muted">Prediction One models and AiTEMS trainings of the provider\'s operators, from '
        "Airflow's asset events: each (re)training, the gate metric of the retrained and the served "
        "model, what was decided, and the rows scored since.</p>",
    ]
    if single:
        body.append(f'<p><a href="{escape(page_url)}">All models</a></p>')
    elif len(histories) > 1:
        items = "".join(f'<a href="#{anchor(h)}">{escape(h.title)}</a>' for h in histories)
        body.append(f'<nav class="models">{items}</nav>')
    if not histories:
        body.append(
            '<p class="empty">No model to show: none of the DAGs you may read has trained, retrained or '
            "switched a model with this provider's operators yet.</p>"
        )
    body += [model_section(h, ui_base, page_url) for h in histories]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Models</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>"
    )
