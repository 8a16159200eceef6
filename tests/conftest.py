"""Fixtures shared by every test package."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterator

import pytest

from tests.tiny_model import make_tiny_bert, make_tiny_xlmr

# Tests never reach a model hub; everything they load is on this disk.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT folder, built once per test session."""
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_xlmr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random XLM-RoBERTa with a Unigram tokenizer trained on Chinese and English, built once."""
    return make_tiny_xlmr(tmp_path_factory.mktemp("tiny-xlmr"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def root_logging_restored() -> Iterator[None]:
    """Undo what an in-process CLI run did to the root logger: `log_format.configure()` installs a
    StreamHandler on the sys.stderr of that moment, a capture stream pytest closes after the test,
    and sets INFO; a later log line from a background thread then printed `--- Logging error ---`."""
    root = logging.getLogger()
    handlers, level = set(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers and type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
    root.setLevel(level)
