"""`/camel review [n]`: the n most useful unlabelled messages of THIS channel.

Candidates come from the scores the learning loop stored for the serving version (one indexed
query, only this channel's messages, none with a live correction, none deleted or purged);
`camel.select_for_review` picks among the best of them with a diversity penalty over the
stored base embeddings, so near-duplicates are not asked together.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlite_utils import Database

import camel
import storage
from camel.review import MIN_CANDIDATES

log = logging.getLogger(__name__)
DEFAULT_N = 5
MAX_N = 10  # one ephemeral message: 10 messages x (section + context + actions) stays under Slack's 50 blocks


@dataclass(frozen=True)
class ReviewItem:
    candidate: storage.ReviewCandidate
    permalink: str


def pick(db: Database, task: str, channel: str, n: int) -> list[storage.ReviewCandidate]:
    """Up to n candidates of `channel`, most useful first, spread over the embedding space."""
    candidates = storage.review.review_candidates(db, task, channel, max(MIN_CANDIDATES, 10 * n))
    if not candidates:
        return []
    scores = np.array([c.score for c in candidates], dtype=np.float64)
    dims = {len(c.embedding) for c in candidates}
    if len(dims) != 1:  # a base change between passes: fall back to the plain ranking
        return candidates[:n]
    embeddings = np.stack([np.frombuffer(c.embedding, dtype=np.float32) for c in candidates])
    return [candidates[i] for i in camel.select_for_review(scores, embeddings, n)]


def permalink(client: WebClient, channel: str, ts: str) -> str:
    """Slack's permalink, or one built from the ids when Slack cannot give it."""
    try:
        link = client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink")
        if isinstance(link, str) and link:
            return link
    except SlackApiError as exc:
        log.warning("chat.getPermalink failed: %s", exc.response.get("error"))
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


def review_items(db: Database, client: WebClient, task: str, channel: str, n: int) -> list[ReviewItem]:
    return [ReviewItem(c, permalink(client, c.channel, c.ts)) for c in pick(db, task, channel, n)]
