"""What the demo shows: a transcript, the accuracy table, a learning-curve PNG and an HTML report."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RoundResult:
    """Held-out accuracy of the adapter a task served after one training round."""

    task: str
    round: int
    version: int
    labels_seen: int  # resolved labels the bot had received when this version went live
    accuracy: float
    macro_f1: float
    heldout: int


@dataclass(frozen=True)
class Exchange:
    """One message, what the bot answered, and what the team did about it."""

    task: str
    text: str
    reply: str
    correction: str
    kind: str  # the correction's source: menu, reaction or confirm


def transcript_lines(exchanges: list[Exchange]) -> list[str]:
    lines = []
    for ex in exchanges:
        lines += [f"  [{ex.task}] user: {ex.text}", f"      bot: {ex.reply}", f"     team: {ex.correction}"]
    return lines


def table_lines(results: list[RoundResult]) -> list[str]:
    header = f"  {'task':<10} {'round':>5} {'adapter':>7} {'labels':>6} {'accuracy':>8} {'macro F1':>8}"
    rows = [
        f"  {r.task:<10} {r.round:>5} {'v' + str(r.version):>7} {r.labels_seen:>6} "
        f"{r.accuracy:>8.1%} {r.macro_f1:>8.3f}"
        for r in results
    ]
    return [header, *rows]


def write_curve(results: list[RoundResult], path: Path) -> Path:
    from bot import charts  # matplotlib is only needed once the demo has results

    with charts.figure(6.4, 4.0) as (figure, axes):
        for task in sorted({r.task for r in results}):
            points = [r for r in results if r.task == task]
            axes.plot([r.labels_seen for r in points], [r.accuracy for r in points], marker="o", label=task)
        axes.set_xlabel("labelled messages the round learned from (seed + team corrections)")
        axes.set_ylabel("held-out accuracy")
        axes.set_ylim(0, 1)
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right")
        axes.set_title("camel-bot demo: accuracy after each training round")
        path.write_bytes(charts.png_bytes(figure))
    return path


def write_html(
    results: list[RoundResult], exchanges: list[Exchange], png: Path, path: Path, summary: list[str]
) -> Path:
    image = base64.b64encode(png.read_bytes()).decode("ascii")
    rows = "".join(
        f"<tr><td>{html.escape(r.task)}</td><td>{r.round}</td><td>v{r.version}</td><td>{r.labels_seen}</td>"
        f"<td>{r.accuracy:.1%}</td><td>{r.macro_f1:.3f}</td><td>{r.heldout}</td></tr>"
        for r in results
    )
    talk = "".join(
        f"<li><b>{html.escape(ex.task)}</b>: {html.escape(ex.text)}<br>bot: {html.escape(ex.reply)}"
        f"<br>team: {html.escape(ex.correction)}</li>"
        for ex in exchanges
    )
    notes = "".join(f"<li>{html.escape(line)}</li>" for line in summary)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>camel-bot demo report</title>
<style>body{{font-family:sans-serif;max-width:52em;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:right}}td:first-child{{text-align:left}}</style>
</head><body>
<h1>camel-bot demo</h1>
<ul>{notes}</ul>
<h2>Accuracy per training round</h2>
<table><tr><th>task</th><th>round</th><th>adapter</th><th>labels received</th><th>accuracy</th>
<th>macro F1</th><th>held-out n</th></tr>{rows}</table>
<p><img alt="learning curve" src="data:image/png;base64,{image}"></p>
<h2>A few exchanges</h2><ul>{talk}</ul>
</body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path
