"""The contract between the bot and a training round's child process, in both directions.

Down: the parent turns `RoundOptions` into the child's command line with `to_argv()`, and the
child (`python -m bot.loop.round`) reads it back with `from_argv()`; both are generated from the
one list of fields, so a flag the child parses is always one the parent can pass.
Up: the child finishes with a typed `RoundSummary`, written as JSON to
`<data_dir>/runs/run-NNNNNN.json`; the parent reads it back into the same type for the report.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import storage
from bot.settings import ENGINE_NAMES, DataPaths, Settings

TRIGGERS = ("schedule", "threshold", "manual")
_DEFAULTS = Settings()  # a round run by hand behaves like the bot on default settings


@dataclass(frozen=True)
class RoundOptions:
    db: str = field(metadata={"help": "the storage database (camel.db)", "required": True})
    task: str = field(metadata={"help": "the task to train", "required": True})
    trigger: str = field(default="manual", metadata={"help": "what started the round", "choices": TRIGGERS})
    run_id: int | None = field(default=None, metadata={"help": "a run the parent already started"})
    data_dir: str = field(
        default="", metadata={"help": "adapters/ and feature_cache/ live here (default: the db's folder)"}
    )
    base_model: str = field(default=_DEFAULTS.model.base_model, metadata={"help": "'' = the shipped all-MiniLM-L6-v2"})
    trainable_layers: int = field(default=_DEFAULTS.model.trainable_layers, metadata={"help": "K: top blocks trained"})
    threads: int = field(default=_DEFAULTS.model.training_threads, metadata={"help": "torch threads"})
    heldout_fraction: float = field(
        default=_DEFAULTS.learning.heldout_fraction, metadata={"help": "share of labels held out to judge adapters"}
    )
    admin_weight: float = field(default=_DEFAULTS.admin_weight, metadata={"help": "weight of an admin's label"})
    epsilon: float = field(default=_DEFAULTS.learning.gate_macro_f1_epsilon, metadata={"help": "allowed macro-F1 loss"})
    max_recall_drop: float = field(
        default=_DEFAULTS.learning.gate_max_recall_drop, metadata={"help": "allowed recall drop of any supported label"}
    )
    min_label_support: int = field(
        default=_DEFAULTS.learning.gate_min_label_support,
        metadata={"help": "held-out messages a label needs before its recall drop can block a round"},
    )
    max_epochs: int = field(default=_DEFAULTS.model.max_epochs, metadata={"help": "upper bound on epochs"})
    engine: str = field(
        default=_DEFAULTS.model.engine,
        metadata={
            "help": "what runs the frozen bottom when a state is not cached (the bot passes the engine serving "
            "runs, so the round's states and serving's share cache keys)",
            "choices": ("auto", *ENGINE_NAMES),
        },
    )

    @classmethod
    def from_settings(
        cls, settings: Settings, task: str, trigger: str, run_id: int | None, engine: str | None = None
    ) -> RoundOptions:
        """What the bot passes: every knob comes from its settings; `engine`: the one serving chose."""
        model, learning = settings.model, settings.learning
        return cls(
            db=settings.db_path,
            task=task,
            trigger=trigger,
            run_id=run_id,
            data_dir=settings.data_dir,
            base_model=model.base_model,
            trainable_layers=model.trainable_layers,
            threads=model.training_threads,
            heldout_fraction=learning.heldout_fraction,
            admin_weight=settings.admin_weight,
            epsilon=learning.gate_macro_f1_epsilon,
            max_recall_drop=learning.gate_max_recall_drop,
            min_label_support=learning.gate_min_label_support,
            max_epochs=model.max_epochs,
            engine=engine or model.engine,
        )

    def to_argv(self) -> list[str]:
        """The child's flags for these options (a field left at None is not passed)."""
        argv: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                argv += [_flag_name(f.name), str(value)]
        return argv

    @classmethod
    def from_argv(
        cls, argv: Sequence[str] | None, prog: str = "python -m bot.loop.round", description: str = ""
    ) -> RoundOptions:
        """Parse the child's command line; exits with status 2 and a usage line on bad flags."""
        parsed = vars(parser(prog, description).parse_args(argv))
        options = cls(**parsed)
        return dataclasses.replace(options, data_dir=options.data_dir or str(Path(options.db).resolve().parent))


def _flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _parse_type(f: dataclasses.Field[Any]) -> type:
    kind = str(f.type)
    return int if kind.startswith("int") else float if kind.startswith("float") else str


def parser(prog: str = "python -m bot.loop.round", description: str = "") -> argparse.ArgumentParser:
    """The child's argument parser, one flag per `RoundOptions` field."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    for f in fields(RoundOptions):
        extra = {k: v for k, v in f.metadata.items() if k in ("required", "choices")}
        default = None if f.default is dataclasses.MISSING else f.default
        p.add_argument(
            _flag_name(f.name), dest=f.name, type=_parse_type(f), default=default, help=f.metadata["help"], **extra
        )
    return p


def summary_path(data_dir: str, run_id: int) -> Path:
    """Where the child writes a round's summary (its log sits beside it as run-NNNNNN.log)."""
    return Path(DataPaths(data_dir).runs) / f"run-{run_id:06d}.json"


@dataclass(frozen=True)
class RoundSummary:
    """What one training round did: counts, the gate's decision and both sides' held-out metrics."""

    task: str
    outcome: str  # promoted | rejected | skipped | failed
    run_id: int | None = None
    trigger: str = "?"
    reason: str = ""
    n_train: int = 0
    n_heldout: int = 0
    n_new: int = 0
    parent_version: int | None = None
    version: int | None = None
    new_metrics: dict[str, Any] | None = None
    old_metrics: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None  # the majority baseline a first adapter had to beat
    decision: dict[str, Any] | None = None  # gate.Decision.as_dict()
    finished_at: str = ""

    @property
    def per_label_changes(self) -> list[dict[str, Any]]:
        return list((self.decision or {}).get("per_label_changes") or [])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoundSummary:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_run(cls, run: storage.TrainingRun) -> RoundSummary:
        """What the database knows, for a round that died before writing its summary."""
        return cls(
            task=run.task,
            outcome=run.outcome or "failed",
            run_id=run.id,
            trigger=run.trigger,
            reason=run.error or "",
            n_train=run.n_train,
            n_heldout=run.n_heldout,
            n_new=run.n_new,
        )

    @classmethod
    def read(cls, path: Path) -> RoundSummary:
        """Raises OSError or ValueError when the file is missing or not a summary."""
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path} does not hold a round summary")
        return cls.from_dict(data)

    def write(self, path: Path) -> None:
        """Atomically: the parent may read it the moment the child exits."""
        storage.files.make_private_dirs(path.parent)
        body = dataclasses.replace(self, finished_at=self.finished_at or datetime.now().astimezone().isoformat())
        temp = path.with_suffix(".tmp")
        # Owner-only whatever the umask: a summary names labels and metrics of users' messages.
        with os.fdopen(storage.files.open_private(temp), "w") as handle:
            handle.write(json.dumps(dataclasses.asdict(body), indent=2, default=str))
        os.replace(temp, path)
