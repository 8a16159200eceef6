"""The team's memory: a text people labelled gets their label again, at once, before any round.

A message's key is its text as a reader compares it (`text_key`: Slack markup reduced to
placeholders, then Unicode NFKC, case and whitespace folded). A new message whose key equals a
labelled message's key is answered with that label, stated as the team's, not as the model's
guess. Nearly identical texts (punctuation changed, a typo) are answered the same way when their
character n-gram similarity to a labelled text reaches `near_similarity`, a threshold chosen on
a development split so these answers stay at least 98% right (bench/system/memory.py).

Everything the memory knows lives in SQLite (`storage.memory`): keys on the messages table, the
labels in the live corrections, read at each lookup. So it holds from the moment a correction is
stored, survives restarts and hot reloads, and forgets a text the moment its row is erased or
blanked (the key goes with the text). In memory here is only the near-duplicate index, a cache
brought up to date whenever the store's change mark moves (a new correction, an erasure or an edit).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlite_utils import Database

import storage
from bot.plain_text import with_placeholders
from camel.text_norm import fold

log = logging.getLogger(__name__)

# Character n-grams inside word boundaries: a typo or a punctuation change touches a few of them,
# a different request most of them. Hashed (no vocabulary to fit or keep), length-normalised.
NGRAM_RANGE = (2, 4)
HASH_FEATURES = 2**18


def text_key(text: str) -> str:
    """The text as it compares for meaning (digests for erasure and the cache hash the original)."""
    return fold(with_placeholders(text))


@dataclass(frozen=True)
class Recall:
    """The team's label for a text: `how` is "exact" (same key) or "near" (similarity ≥ the
    threshold); `similarity` 1.0 for exact; `message_id` one labelled message it came from."""

    label: str
    how: str
    similarity: float
    message_id: int


class _NearIndex:
    """Hashed character n-gram vectors of a task's labelled keys, rows aligned with `keys`."""

    def __init__(self, keys: list[str], message_ids: list[int]) -> None:
        self.keys = keys
        self.message_ids = message_ids
        self.matrix = _vectors(keys) if keys else None

    @classmethod
    def synced(cls, old: "_NearIndex | None", keyed: list[tuple[int, str]]) -> "_NearIndex":
        """The index of `keyed` (message id, key; by id): the rows of `old` whose message still has
        the same key are kept as they are, and only the others are vectorised (a correction costs
        one row, an erasure none). The same rows, in the same order, as a rebuild from `keyed`."""
        from scipy.sparse import vstack

        if old is None or old.matrix is None:
            return cls([key for _i, key in keyed], [i for i, _key in keyed])
        old_row = {(i, key): row for row, (i, key) in enumerate(zip(old.message_ids, old.keys))}
        rows = [old_row.get(pair) for pair in keyed]
        if rows == list(range(len(old.keys))):
            return old
        added = [n for n, row in enumerate(rows) if row is None]
        synced = cls([], [])
        synced.keys = [key for _i, key in keyed]
        synced.message_ids = [i for i, _key in keyed]
        if not keyed:
            return synced
        kept = [row for row in rows if row is not None]
        parts = [old.matrix[kept]] if kept else []
        if added:
            parts.append(_vectors([synced.keys[n] for n in added]))
        # Kept rows first, then the new ones: put each back at its place in `keyed`.
        where = [n for n, row in enumerate(rows) if row is not None] + added
        order = np.argsort(np.array(where))
        synced.matrix = vstack(parts).tocsr()[order] if len(parts) > 1 else parts[0][order]
        return synced

    def best(self, key: str) -> tuple[str, int, float] | None:
        if self.matrix is None:
            return None
        scores = (self.matrix @ _vectors([key]).T).toarray().ravel()
        row = int(np.argmax(scores))
        return self.keys[row], self.message_ids[row], float(scores[row])


@functools.cache
def _vectorizer():  # type: ignore[no-untyped-def]  # sklearn's HashingVectorizer
    """Stateless (nothing fitted), so one serves every lookup and thread; built on first use."""
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(
        analyzer="char_wb", ngram_range=NGRAM_RANGE, n_features=HASH_FEATURES, alternate_sign=False, lowercase=False
    )


def _vectors(keys: Sequence[str]):  # type: ignore[no-untyped-def]  # scipy sparse matrix
    return _vectorizer().transform(list(keys))


def similarity(a: str, b: str) -> float:
    """The near-duplicate score of two texts' keys (cosine of hashed character n-grams)."""
    vectors = _vectors([a, b])
    return float((vectors[0] @ vectors[1].T).toarray()[0, 0])


class TeamMemory:
    """Looks texts up in the team's labels; thread-safe (one per process, shared by the workers)."""

    def __init__(self, db: Database, *, admin_weight: float = 1.0, near_similarity: float | None = None) -> None:
        self.db = db
        self.admin_weight = admin_weight
        self.near_similarity = near_similarity
        self._lock = threading.Lock()
        self._mark: dict[str, tuple[int, int]] = {}
        self._near: dict[str, _NearIndex] = {}

    def recall(self, task: storage.Task, texts: Sequence[str]) -> list[Recall | None]:
        """For each text: the team's label (exact key, else a near-duplicate), or None."""
        if not texts:
            return []
        self._sync(task.name)
        keys = [text_key(text) for text in texts]
        labels = storage.memory.labels_by_key(self.db, task.name, keys, admin_weight=self.admin_weight)
        found: list[Recall | None] = []
        for key in keys:
            exact = labels.get(key)
            if exact is not None:
                # A disputed text is the admins' to settle: no near-duplicate stands in for it.
                found.append(self._usable(task, exact, "exact", 1.0))
                continue
            found.append(self._near_recall(task, key))
        return found

    def _usable(self, task: storage.Task, said: storage.KeyLabel, how: str, score: float) -> Recall | None:
        # A label the task no longer has (retired, renamed away) is not stated: the model answers.
        if said.label is None or said.label not in task.labels:
            return None
        return Recall(said.label, how, score, said.message_ids[-1])

    def _near_recall(self, task: storage.Task, key: str) -> Recall | None:
        if self.near_similarity is None or not key:
            return None
        with self._lock:
            index = self._near.get(task.name)
        best = index.best(key) if index is not None else None
        if best is None or best[2] < self.near_similarity:
            return None
        near_key, _message_id, score = best
        said = storage.memory.labels_by_key(self.db, task.name, [near_key], admin_weight=self.admin_weight)
        return self._usable(task, said[near_key], "near", score) if near_key in said else None

    def forget(self, text_hashes: Sequence[str]) -> int:
        """After an erasure (`bot.erasure`): an erased message's key left the store with its text (the
        text_key column follows the text), so each near-duplicate index drops the rows of messages
        no longer keyed (`_NearIndex.synced`: the others keep their vectors) and the row is gone
        from memory at once. The rows are by message, so this runs whatever `text_hashes` holds:
        a deleted message's text another message still has is not listed. Returns the rows dropped."""
        with self._lock:
            tasks = list(self._near)
            self._mark.clear()
        dropped = 0
        for task in tasks:
            keyed = storage.memory.keyed_labelled(self.db, task)
            with self._lock:
                old = self._near.get(task)
            index = _NearIndex.synced(old, keyed)
            with self._lock:
                self._near[task] = index
            dropped += max(0, len(old.message_ids) - len(index.message_ids)) if old is not None else 0
        return dropped

    def indexed_messages(self, task: str) -> list[int]:
        """The labelled messages the task's near-duplicate index holds in memory now."""
        with self._lock:
            index = self._near.get(task)
        return list(index.message_ids) if index is not None else []

    def index_bytes(self, task: str) -> int:
        """The near-duplicate index's size in memory (sparse data, indices and row pointers)."""
        with self._lock:
            index = self._near.get(task)
        matrix = index.matrix if index is not None else None
        return 0 if matrix is None else int(matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes)

    def _sync(self, task: str) -> None:
        """Key the labelled messages that have no key yet, and bring the near-duplicate index up to date,
        when the store changed since the last look (two MAX(id) reads otherwise)."""
        mark = storage.memory.change_mark(self.db)
        with self._lock:
            if self._mark.get(task) == mark:
                return
        unkeyed = storage.memory.unkeyed_labelled(self.db, task)
        if unkeyed:
            storage.memory.set_text_keys(self.db, [(i, text, text_key(text)) for i, text in unkeyed])
        index = None
        if self.near_similarity is not None:
            keyed = storage.memory.keyed_labelled(self.db, task)
            with self._lock:
                old = self._near.get(task)
            index = _NearIndex.synced(old, keyed)
        with self._lock:
            self._mark[task] = mark
            if index is not None:
                self._near[task] = index
