"""PredictorRegistry: load, hot swap, a broken folder leaves the old adapter serving, sync."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import camel
import storage
from bot.metrics import BotMetrics
from bot.loop.registry import PredictorRegistry


def test_load_swap_and_broken_folder(tiny_bert_dir: Path, support_adapter_dir: Path, tmp_path: Path) -> None:
    metrics = BotMetrics()
    registry = PredictorRegistry(str(tiny_bert_dir), None, metrics=metrics)
    assert registry.serving("support") is None and registry.version("support") is None
    registry.load("support", 1, str(support_adapter_dir))
    first = registry.serving("support")
    assert first is not None and first.version == 1
    before = first.predictor.answer(["refund charged twice"])[0]
    copy = tmp_path / "v0002"
    shutil.copytree(support_adapter_dir, copy)
    registry.load("support", 2, str(copy))
    second = registry.serving("support")
    # Replaced as one value: whoever took the first still answers with v1's adapter, as v1.
    assert second is not None and second.version == 2 and registry.version("support") == 2
    assert second.predictor is registry.get("support") and second.predictor.adapter is not first.predictor.adapter
    assert first.version == 1 and first.predictor.adapter.labels == second.predictor.adapter.labels
    assert second.predictor.cache is first.predictor.cache  # one feature cache for every version
    assert second.predictor.answer(["refund charged twice"])[0].label == before.label
    predictor = second.predictor
    broken = tmp_path / "broken"
    shutil.copytree(support_adapter_dir, broken)
    (broken / camel.WEIGHTS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(camel.CamelError):
        registry.load("support", 3, str(broken))
    assert registry.version("support") == 2 and predictor.answer(["refund"])[0].label
    assert b'camel_reloads_total{result="failed",task="support"} 1.0' in metrics.render()


def test_sync_loads_active_versions_and_reports_bad_ones(tiny_bert_dir: Path, support_adapter_dir: Path) -> None:
    db = storage.open_store(":memory:")
    storage.tasks.upsert_task(
        db, storage.TaskSpec("support", kind="intent", labels=["card_arrival", "feelings", "refund"])
    )
    storage.tasks.upsert_task(db, storage.TaskSpec("other", kind="other", labels=["a", "b"]))
    storage.adapters.register_adapter(
        db,
        storage.NewAdapterVersion(
            task="support", version=1, path=str(support_adapter_dir), parent_version=None, run_id=None, metrics={}
        ),
    )
    storage.adapters.activate_adapter(db, "support", 1, reason="test")
    storage.adapters.register_adapter(
        db,
        storage.NewAdapterVersion(
            task="other", version=1, path="/nonexistent/adapter", parent_version=None, run_id=None, metrics={}
        ),
    )
    storage.adapters.activate_adapter(db, "other", 1, reason="test")
    registry = PredictorRegistry(str(tiny_bert_dir), None)
    errors = registry.sync(db)
    assert registry.version("support") == 1 and registry.get("other") is None
    assert len(errors) == 1 and "*other*: no adapter version loads (v1: adapter folder not found" in errors[0]
    assert registry.sync(db) == errors  # the broken one is retried; the loaded one is left alone


def test_the_registry_runs_the_engine_its_setting_names_and_logs_why(
    tiny_bert_dir: Path, support_adapter_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engines_dir = tmp_path / "engines"
    registry = PredictorRegistry(
        str(tiny_bert_dir), str(tmp_path / "cache"), engine="ort-fp32", engines_dir=str(engines_dir)
    )
    with caplog.at_level("INFO", logger="bot.loop.registry"):
        registry.load("support", 1, str(support_adapter_dir))
    assert registry.engine().name == "ort-fp32"
    predictor = registry.get("support")
    assert predictor is not None and predictor.cache.engine is registry.engine().engine
    assert any(r.getMessage().startswith("bottom engine ort-fp32: [model] engine = ort-fp32") for r in caplog.records)
    assert list(engines_dir.glob("*.onnx"))  # exported into the data folder's engines/, kept for later starts
    # The same messages answered by the reference engine get the same labels.
    reference = PredictorRegistry(str(tiny_bert_dir), None)
    reference.load("support", 1, str(support_adapter_dir))
    assert reference.engine().name == "torch-fp32"
    texts = ["refund charged twice", "my card has not arrived", "love it"]
    assert [a.label for a in predictor.answer(texts)] == [a.label for a in reference.get("support").answer(texts)]  # type: ignore[union-attr]


def test_label_changes_are_served_hot_and_survive_a_swap(
    tiny_bert_dir: Path, support_adapter_dir: Path, tmp_path: Path
) -> None:
    db = storage.open_store(":memory:")
    registry = PredictorRegistry(str(tiny_bert_dir), None)
    registry.load("support", 1, str(support_adapter_dir))
    labels = registry.get("support").adapter.labels  # type: ignore[union-attr]
    storage.tasks.upsert_task(db, storage.TaskSpec("support", kind="intent", labels=labels))
    serving = registry.serving("support")
    assert serving is not None
    storage.labels.change(db, "support", "rename", "UADMIN", labels[0], "renamed_label")
    storage.labels.change(db, "support", "add", "UADMIN", new_name="crypto", description="sending coins out")
    registry.follow_labels(db, "support")
    # the predictor taken before the change answers with today's labels from its next call
    top = {
        label for answer in serving.predictor.answer(["refund charged twice", "my card"]) for label, _ in answer.top3
    }
    assert labels[0] not in top and serving.predictor.label_plan().labels[-1] == "crypto"
    assert "renamed_label" in serving.predictor.label_plan().labels
    # a later version (a rollback, a fallback, a round's result) is served under today's names too
    copy = tmp_path / "v0002"
    shutil.copytree(support_adapter_dir, copy)
    registry.load("support", 2, str(copy))
    assert registry.get("support").label_plan().labels[-1] == "crypto"  # type: ignore[union-attr]
    # a change made by another process is picked up by the next sync
    storage.labels.change(db, "support", "retire", "UADMIN", "crypto")
    registry.sync(db)
    assert "crypto" not in registry.get("support").label_plan().labels  # type: ignore[union-attr]


def test_the_serving_cache_keeps_at_most_the_configured_states_in_memory(
    tiny_bert_dir: Path, support_adapter_dir: Path
) -> None:
    registry = PredictorRegistry(str(tiny_bert_dir), None, cache_memory_entries=2)  # no folder: memory only
    registry.load("support", 1, str(support_adapter_dir))
    predictor = registry.get("support")
    assert predictor is not None
    predictor.answer(["refund charged twice", "my card has not arrived", "love it", "where is my card", "hello"])
    assert len(predictor.cache) == 2  # [model] cache_memory_entries bounds serving's resident states
