"""What is said after a training round (a neutral `bot.reports.RoundReport`), and the chart of a
metric across versions.

Pure formatting of content; how it looks in Slack is `bot.slack.blocks`' business.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import storage
from bot import charts, reports, texts
from bot.loop.options import RoundSummary

MAX_LABEL_LINES = 12
ICONS = {"promoted": ":white_check_mark:", "rejected": ":no_entry_sign:", "failed": ":warning:", "skipped": ":zzz:"}


def _pct(metrics: Mapping[str, Any] | None, key: str) -> str:
    if not metrics or key not in metrics:
        return "n/a"
    return f"{100 * float(metrics[key]):.1f}%"


def headline(summary: RoundSummary) -> str:
    outcome = summary.outcome or "failed"
    name = f" {texts.version_label(summary.version)}" if summary.version is not None else ""
    return f"{ICONS.get(outcome, '')} Training round for *{summary.task}*: {outcome}{name}".strip()


def label_lines(changes: Sequence[Mapping[str, Any]]) -> list[str]:
    """Per-label recall changes, biggest moves first."""
    ordered = sorted(changes, key=lambda c: abs(float(c["change"])), reverse=True)[:MAX_LABEL_LINES]
    return [
        f"`{c['label']}` recall {100 * c['old_recall']:.0f}% -> {100 * c['new_recall']:.0f}%"
        f" ({100 * c['change']:+.0f} pts, n={c['support']})"
        for c in ordered
    ]


def metrics_fields(summary: RoundSummary) -> tuple[reports.Field, ...]:
    """The active version (or the majority baseline) beside the candidate, and what the round learned from."""
    old, new = summary.old_metrics or summary.baseline, summary.new_metrics
    old_name = "Active" if summary.old_metrics else "Majority baseline"
    return (
        reports.Field(old_name, f"accuracy {_pct(old, 'accuracy')}, macro-F1 {_pct(old, 'macro_f1')}"),
        reports.Field("Candidate", f"accuracy {_pct(new, 'accuracy')}, macro-F1 {_pct(new, 'macro_f1')}"),
        reports.Field(
            "New examples learned", f"{summary.n_new} (train {summary.n_train}, held-out {summary.n_heldout})"
        ),
        reports.Field("Trigger", summary.trigger),
    )


def abstention_lines(metrics: Mapping[str, Any]) -> list[str]:
    """The candidate's calibration and out-of-scope recall, when the round measured them."""
    lines = []
    calibration = metrics.get("calibration")
    if isinstance(calibration, Mapping):
        lines.append(
            f"*Calibration* ({calibration.get('status')}): states a label from {_number(calibration.get('threshold'))}"
            f" confidence for {_number(calibration.get('target_precision'))} precision; held-out check: precision"
            f" {_number(calibration.get('precision'))}, answered {_number(calibration.get('coverage'))}"
        )
    oos = metrics.get("out_of_scope")
    if isinstance(oos, Mapping):
        lines.append(
            f"*Out of scope* (`{oos.get('label')}`): recall {_number(oos.get('recall'))} on {oos.get('support')}"
            " held-out messages"
        )
    return lines


def _number(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) else "n/a"


def build_report(summary: RoundSummary, chart: reports.Chart | None = None) -> reports.RoundReport:
    """The report of one round's summary; metrics only when the candidate was measured."""
    return reports.RoundReport(
        title=headline(summary),
        decision=summary.reason,
        metrics=metrics_fields(summary) if summary.new_metrics else (),
        abstention=tuple(abstention_lines(summary.new_metrics or {})),
        label_changes=tuple(label_lines(summary.per_label_changes)),
        chart=chart,
    )


def metric_chart(history: Sequence[storage.AdapterVersion], metric: str = "macro_f1") -> bytes:
    """A small PNG of `metric` per adapter version; rejected candidates drawn hollow."""
    points = [(v.version, float(v.metrics[metric]), v.status) for v in history if metric in (v.metrics or {})]
    with charts.figure(5, 2.6) as (fig, ax):
        kept = [(x, y) for x, y, s in points if s != "rejected"]
        dropped = [(x, y) for x, y, s in points if s == "rejected"]
        if kept:
            ax.plot(*zip(*kept), marker="o", color="tab:blue", label="promoted")
        if dropped:
            ax.scatter(*zip(*dropped), facecolors="none", edgecolors="tab:red", label="rejected")
        ax.set_xlabel("adapter version")
        ax.set_ylabel(metric.replace("_", "-"))
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        if points:
            ax.legend(loc="lower right", fontsize="small")
        return charts.png_bytes(fig)
