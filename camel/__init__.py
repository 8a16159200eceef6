"""camel: CAMEL adaptation of a frozen, shared transformer encoder to small, growing classification tasks.

Controlled Adaptation (only the top K blocks are copied and trained), Micro-Training (small,
frequent, seeded rounds on cached bottom states) and an Adaptation Layer (pooling, bottleneck,
classifier). No Slack and no SQL here; see docs/interfaces.md for the contract.
"""

from camel.adapter_io import (
    ADAPTER_FILES,
    CONFIG_FILE,
    LABELS_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    WEIGHTS_FILE,
    BaseRef,
    FallbackResult,
    adapter_base,
    load_adapter,
    load_first_good,
    save_adapter,
    version_folder_name,
)
from camel.answers import Answer
from camel.base import BaseEncoder, load_base
from camel.calibration import CALIBRATION_FILE, Calibration, CalibrationError, fit_calibration
from camel.cache import CompactionReport, FeatureCache, base_tag, text_digest
from camel.config import CamelConfig, TrainingArgs, default_base_model_path
from camel.engines import ENGINES, EngineChoice, EngineError, choose_engine, cpu_facts, make_engine
from camel.errors import CamelError, OtherBaseError
from camel.evaluation import evaluate
from camel.label_view import LabelPlan, LabelView
from camel.model import Adapter, new_adapter
from camel.out_of_scope import (
    OUT_OF_SCOPE_FILE,
    Decision,
    OutOfScopeDetector,
    OutOfScopeError,
    decide,
    fit_out_of_scope,
    max_probability_score,
    nearest_neighbour_score,
)
from camel.predictor import Predictor
from camel.review import ReviewError, select_for_review, uncertainty
from camel.trainer import TrainResult, train
from camel.version import __version__

__all__ = [
    "Answer",
    "LabelPlan",
    "LabelView",
    "CALIBRATION_FILE",
    "OUT_OF_SCOPE_FILE",
    "Calibration",
    "CalibrationError",
    "Decision",
    "OutOfScopeDetector",
    "OutOfScopeError",
    "ReviewError",
    "decide",
    "fit_calibration",
    "fit_out_of_scope",
    "max_probability_score",
    "nearest_neighbour_score",
    "select_for_review",
    "uncertainty",
    "ADAPTER_FILES",
    "CONFIG_FILE",
    "LABELS_FILE",
    "MANIFEST_FILE",
    "METRICS_FILE",
    "WEIGHTS_FILE",
    "Adapter",
    "CompactionReport",
    "FallbackResult",
    "BaseRef",
    "OtherBaseError",
    "adapter_base",
    "text_digest",
    "base_tag",
    "BaseEncoder",
    "CamelConfig",
    "CamelError",
    "ENGINES",
    "EngineChoice",
    "EngineError",
    "choose_engine",
    "cpu_facts",
    "make_engine",
    "OtherBaseError",
    "FeatureCache",
    "Predictor",
    "TrainResult",
    "TrainingArgs",
    "__version__",
    "default_base_model_path",
    "evaluate",
    "load_adapter",
    "load_base",
    "load_first_good",
    "new_adapter",
    "save_adapter",
    "train",
    "version_folder_name",
]
