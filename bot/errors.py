"""Every error the bot raises on purpose, one-line classes under one base per job.

    BotError
    ├── SettingsError                a missing or wrong setting; the message names it
    │   ├── SettingsFileError        the settings or secrets file cannot be read or parsed
    │   ├── SettingsValueError       a setting has a wrong type or value
    │   └── MissingSecretError       a secret needed to talk to Slack is not set
    ├── LearningError                the learning loop cannot do what was asked
    │   ├── TaskBusyError            another training round holds this task's lock
    │   ├── ScheduleError            a cron expression or time zone cannot be used
    │   ├── RoundInputError          a training round was asked for something impossible
    │   └── RollbackError            the requested version cannot be rolled back to
    └── DemoError                    the offline demo cannot go on
        ├── DemoDataError            the --data CSV is missing, unreadable or too small
        └── DemoStalledError         the bot did not answer or a round did not finish in time

`camel.CamelError` and `storage.StorageError` stay in their packages; the command line turns
all three families into one line on stderr and exit status 2.
"""

from __future__ import annotations


class BotError(Exception):
    """Base class of every failure the bot reports to its user as one line."""


class SettingsError(BotError):
    """A missing or wrong setting; the message names it."""


class SettingsFileError(SettingsError):
    """The settings or secrets file cannot be read or parsed."""


class SettingsValueError(SettingsError):
    """A setting has a wrong type or value."""


class MissingSecretError(SettingsError):
    """A secret needed to talk to Slack is not set."""


class LearningError(BotError):
    """Base of the learning loop's errors; each subclass carries a one-line message."""


class TaskBusyError(LearningError):
    """Another training round holds this task's lock."""


class ScheduleError(LearningError):
    """A schedule setting (cron expression, time zone) cannot be used."""


class RoundInputError(LearningError):
    """A training round was asked for something that cannot be done (unknown task, bad flag)."""


class RollbackError(LearningError):
    """The requested version cannot be rolled back to."""


class LoopStoppedError(LearningError):
    """The learning loop was stopped: it no longer uses the store (its owner may have closed it)."""


class DemoError(BotError):
    """Base class of every failure the demo reports to its user."""


class DemoDataError(DemoError):
    """The --data CSV is missing, unreadable or has too little data."""


class DemoStalledError(DemoError):
    """The bot did not answer or a training round did not finish in time."""
