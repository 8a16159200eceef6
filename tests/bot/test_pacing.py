"""Replies paced per channel through the inbox, since Slack allows about one post per second per
channel; a 429 is honoured by re-queueing."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from bot.demo.local_slack import FakeSlackAPI
from bot.slack.pacing import ChannelPacer
from tests.bot.conftest import BotUnderTest, running_bot, wait_until


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pacer_lets_a_burst_through_then_one_per_interval() -> None:
    clock = FakeClock()
    pacer = ChannelPacer(per_s=1.0, burst=3, clock=clock)
    assert [pacer.reserve("C1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert pacer.reserve("C1") == pytest.approx(1.0)
    assert pacer.reserve("C2") == 0.0  # channels are paced separately
    clock.now += 1.0
    assert pacer.reserve("C1") == 0.0
    assert pacer.reserve("C1") > 0


def test_pacer_holds_a_channel_for_retry_after() -> None:
    clock = FakeClock()
    pacer = ChannelPacer(per_s=1.0, burst=3, clock=clock)
    pacer.hold("C1", 5.0)
    assert pacer.reserve("C1") == pytest.approx(5.0)
    clock.now += 5.0
    assert pacer.reserve("C1") == pytest.approx(1.0)  # the burst was spent by the 429
    clock.now += 1.0
    assert pacer.reserve("C1") == 0.0


def _metric(bot: BotUnderTest, line: str) -> float:
    found = [r for r in bot.runtime.metrics.render().decode().splitlines() if r.startswith(line + " ")]
    return float(found[0].split()[-1]) if found else 0.0


@pytest.fixture()
def paced_bot(
    tmp_path: Path, fake_slack: FakeSlackAPI, tiny_bert_dir: Path, support_adapter_dir: Path
) -> Iterator[BotUnderTest]:
    with running_bot(
        tmp_path, fake_slack, tiny_bert_dir, support_adapter_dir, channel_posts_per_s=4.0, channel_burst=2
    ) as running:
        yield running


def test_a_burst_in_one_channel_is_queued_not_dropped(paced_bot: BotUnderTest) -> None:
    bot = paced_bot
    count = 8
    for i in range(count):
        assert bot.send_message(f"where is my card {i}", f"1700000600.{i:06d}")[0] == 200
    posts = bot.fake.wait_for("chat.postMessage", count, timeout=30)
    assert sorted(p.params["thread_ts"] for p in posts) == [f"1700000600.{i:06d}" for i in range(count)]
    assert _metric(bot, 'camel_inbox_requeued_total{reason="channel_paced"}') >= count - 2
    # Paced, not merely queued: past the burst of 2, a post at most every 1/4 s (a lower bound,
    # which load on the machine can only widen).
    times = sorted(p.at for p in posts)
    for first, later in zip(times, times[2:]):
        assert later - first >= 0.2


def test_429_is_honoured_through_the_queue(paced_bot: BotUnderTest) -> None:
    bot = paced_bot
    bot.fake.fail_next("chat.postMessage", times=1, retry_after=1)
    assert bot.send_message("refund charged twice", "1700000700.000100")[0] == 200
    post = bot.fake.wait_for("chat.postMessage", timeout=30)[0]
    assert post.params["thread_ts"] == "1700000700.000100"
    assert _metric(bot, 'camel_inbox_requeued_total{reason="rate_limited"}') == 1.0
    wait_until(lambda: len(bot.fake.calls_of("chat.postMessage")) == 1, what="one reply")
    bot.wait_until_handled()
    assert len(bot.fake.calls_of("chat.postMessage")) == 1  # answered once, not twice
