"""Demo failures, each a one-line message for the command line."""

from __future__ import annotations


class DemoError(Exception):
    """Base class of every failure the demo reports to its user."""


class DemoDataError(DemoError):
    """The --data CSV is missing, unreadable or has too little data."""


class DemoStalledError(DemoError):
    """The bot did not answer or a training round did not finish in time."""
