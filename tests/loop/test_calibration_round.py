"""In a real round (child process): the calibration is fitted on the held-out labels,
saved in the version folder under the integrity manifest, served, and out-of-scope recall is
part of the gate's metrics when the task declares an out-of-scope label."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import camel
import storage
from bot.loop.registry import PredictorRegistry
from bot.loop.round_report import build_report
from bot.slack.blocks import message
from tests.loop.conftest import TASK, label_messages


def test_round_fits_calibration_stores_it_under_the_manifest_and_serves_it(loop_env, new_loop) -> None:
    settings, db = loop_env
    storage.tasks.upsert_task(db, storage.TaskSpec(TASK, kind="intent", labels=[], target_precision=0.8))
    label_messages(db, 80)  # 240 labels: about 48 held out, enough to fit (camel needs 40)
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    loop = new_loop(settings, predictors)
    run = loop.run_round(TASK, "manual")
    assert run.outcome == "promoted", run.error
    record = storage.adapters.get_adapter(db, TASK, run.version)
    folder = Path(record.path)
    stored = camel.Calibration.from_json((folder / camel.CALIBRATION_FILE).read_text())
    assert stored.target_precision == 0.8 and stored.floor == 0.5  # the task's abstain_threshold is the floor
    assert stored.fitted_on_n >= camel.calibration.MIN_EXAMPLES and stored.status in ("fitted", "target_unreachable")
    assert stored.threshold >= 0.5 and stored.precision is not None
    manifest = json.loads((folder / "manifest.json").read_text())
    assert camel.CALIBRATION_FILE in json.dumps(manifest)
    assert record.metrics["calibration"]["temperature"] == pytest.approx(stored.temperature)
    assert "out_of_scope" not in record.metrics  # the task declares no out-of-scope label
    serving = predictors.get(TASK)
    assert (
        serving is not None
        and serving.adapter.extra_files[camel.CALIBRATION_FILE] == (folder / camel.CALIBRATION_FILE).read_bytes()
    )
    # A changed calibration file is refused at load: the manifest covers it.
    (folder / camel.CALIBRATION_FILE).write_text(stored.to_json().replace('"threshold"', '"threshold" ', 1))
    with pytest.raises(camel.CamelError):
        camel.load_adapter(str(folder))


def test_gate_metrics_include_out_of_scope_recall(loop_env, new_loop) -> None:
    settings, db = loop_env
    storage.tasks.set_out_of_scope_label(db, TASK, "feelings")  # messages of this vocabulary are "none of mine"
    label_messages(db, 40)
    loop = new_loop(settings, PredictorRegistry(settings.model.base_model, settings.feature_cache_dir))
    run = loop.run_round(TASK, "manual")
    assert run.outcome == "promoted", run.error
    metrics = storage.adapters.get_adapter(db, TASK, run.version).metrics
    oos = metrics["out_of_scope"]
    assert oos["label"] == "feelings" and oos["support"] > 0
    assert oos["support"] == metrics["per_label"]["feelings"]["support"]
    assert oos["recall"] >= metrics["per_label"]["feelings"]["recall"] - 1e-9  # abstaining counts too
    detector = json.loads(
        (Path(storage.adapters.get_adapter(db, TASK, run.version).path) / "out_of_scope.json").read_text()
    )
    assert detector["method"] == "max_probability" and detector["status"] in ("fitted", "too_few_examples")
    text = json.dumps(message(build_report(loop.reporter.summary(run))).blocks)
    assert "*Out of scope* (`feelings`): recall" in text and "*Calibration*" in text
