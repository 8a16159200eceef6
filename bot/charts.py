"""Charts as PNG bytes: the one place that sets matplotlib up for processes without a display."""

from __future__ import annotations

import io
from contextlib import contextmanager
from typing import Iterator

import matplotlib

matplotlib.use("Agg")  # servers, containers and terminals have no display; must precede pyplot
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


@contextmanager
def figure(width: float, height: float) -> Iterator[tuple[Figure, Axes]]:
    """A figure with one axes, closed afterwards: pyplot keeps every open figure alive."""
    fig, axes = plt.subplots(figsize=(width, height), dpi=100)
    try:
        yield fig, axes
    finally:
        plt.close(fig)


def png_bytes(fig: Figure) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
