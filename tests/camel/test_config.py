"""Config validation and base-model loading errors: one line, naming the field or the folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import camel
from camel.errors import BaseModelError, ConfigError


@pytest.mark.parametrize(
    "field, value",
    [
        ("trainable_layers", -1),
        ("trainable_layers", 1.5),
        ("bottleneck", 0),
        ("pooling", "max"),
        ("dropout", 1.0),
        ("multi_label", "yes"),
        ("max_length", 4),
        ("abstain_threshold", 1.5),
    ],
)
def test_camel_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"CamelConfig\.{field} must be") as caught:
        camel.CamelConfig(**{field: value})
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "field, value",
    [
        ("batch_size", 0),
        ("max_epochs", 0),
        ("lr_head", 0.0),
        ("lr_blocks", -1e-3),
        ("val_fraction", 1.0),
        ("label_smoothing", -0.1),
        ("num_threads", -1),
        ("early_stopping_metric", "f1"),
        ("seed", True),
    ],
)
def test_training_args_reject_bad_values(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"TrainingArgs\.{field} must be"):
        camel.TrainingArgs(**{field: value})


def test_config_round_trips_through_dict_and_refuses_unknown_fields() -> None:
    config = camel.CamelConfig(trainable_layers=1, pooling="cls")
    assert camel.CamelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="no field"):
        camel.CamelConfig.from_dict({"trainable_layers": 1, "colour": "blue"})


def test_default_base_model_is_the_shipped_minilm_folder() -> None:
    path = Path(camel.default_base_model_path())
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    assert camel.CamelConfig().resolved_base_model() == str(path)


def test_missing_base_folder_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(BaseModelError, match=f"not found: {missing}"):
        camel.load_base(str(missing))


def test_non_encoder_folder_is_refused(tmp_path: Path) -> None:
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=16, n_head=2).save_pretrained(tmp_path)
    with pytest.raises(BaseModelError, match=rf"{tmp_path} is not a supported encoder \(model_type 'gpt2'"):
        camel.load_base(str(tmp_path))


def test_trainable_layers_above_the_base_depth_is_refused(tiny_base: camel.BaseEncoder) -> None:
    config = camel.CamelConfig(base_model=tiny_base.path, trainable_layers=tiny_base.num_layers + 1)
    with pytest.raises(ConfigError, match=f"trainable_layers must be <= {tiny_base.num_layers}"):
        camel.new_adapter(tiny_base, config, ["a", "b"])


def test_contrastive_knobs_are_validated() -> None:
    with pytest.raises(ConfigError, match=r"TrainingArgs\.examples_per_label must be 0 or an integer >= 2"):
        camel.TrainingArgs(examples_per_label=1)
    with pytest.raises(ConfigError, match=r"TrainingArgs\.contrastive_temperature must be a number > 0"):
        camel.TrainingArgs(contrastive_temperature=0)
    with pytest.raises(ConfigError, match=r"TrainingArgs\.contrastive_weight must be a number >= 0"):
        camel.TrainingArgs(contrastive_weight=-1)


@pytest.mark.parametrize(
    "avx512_bf16, amx, expected", [(False, False, False), (True, False, True), (False, True, True)]
)
def test_bf16_training_is_on_by_default_only_where_the_cpu_has_it(
    monkeypatch: pytest.MonkeyPatch, avx512_bf16: bool, amx: bool, expected: bool
) -> None:
    # On an AVX2-only CPU emulated bfloat16 made a first round 8x slower than float32.
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert camel.TrainingArgs().bf16 is expected
    assert camel.TrainingArgs(bf16=not expected).bf16 is (not expected)  # an explicit choice still wins
