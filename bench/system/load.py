"""Load benchmark of the Slack event path: the rate it keeps up with, losing and doubling nothing.

- The bot: the real `camel-bot serve` in its own process (waitress, request guard, Bolt, the
  durable inbox and its workers, real SQLite, the real all-MiniLM-L6-v2 with an adapter trained
  here on BANKING77 messages from ../shared/data), one task bound to 100 channels.
- Slack's side, on loopback in this process: a Web API stand-in that answers every call after
  100-300 ms and enforces one chat.postMessage per second per channel (a burst of 3, then 429
  with Retry-After), and a bounded, self-stopping open-loop generator that sends signed events
  at a steady rate: 80% messages (distinct texts), 15% reactions, 5% slash commands and menu
  clicks, spread over the 100 channels.
- Measured: acknowledgement latency and status of every request, event -> reply (the moment
  the stand-in accepted the reply), lost (acknowledged messages never answered after a drain)
  and doubled replies, the bot process's RSS every second.
- `--inbox-synchronous NORMAL` runs the bot with the inbox insert at the store's
  synchronous=NORMAL instead of FULL (what a power loss costs to avoid); `both` trains once and
  runs the steady phase twice on copies of one data folder, NORMAL then FULL, and writes the two
  side by side (ack p50/p99: what syncing each acknowledged event to disk costs).
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from bench.common import (
    DATA_DIR,
    benchmark_parser,
    machine_facts,
    machine_line,
    project_env,
    read_split,
    recorded_command,
    require_data,
    rss_mb,
    sample_per_class,
    shared_data,
    write_results,
)
from bot.demo.slack_events import signed_headers
from camel.cache import DEFAULT_MAX_ENTRIES

MODULE = "bench.system.load"
SECRET = "bench-load-secret"
TEAM = "T0LOAD"
CHANNELS = [f"C0LOAD{n:03d}" for n in range(100)]
LABELS = ["card_arrival", "exchange_rate", "lost_or_stolen_card", "pin_blocked", "top_up_failed"]
POSTS_PER_S, BURST = 1.0, 3
DRAIN_S = 60.0


class SlackStandIn:
    """Web API on loopback: 100-300 ms per call, one post per second per channel beyond a burst of 3."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.posts: dict[str, list[float]] = defaultdict(list)  # thread_ts -> acceptance times
        self.replies: list[dict[str, Any]] = []  # (channel, ts, block_id) of replies, for clicks
        self.buckets: dict[str, tuple[float, float]] = {}
        self.calls: Counter[str] = Counter()
        self.rate_limited = 0
        self.ts = itertools.count(1)
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(random.uniform(0.1, 0.3))
                method = self.path.split("/api/", 1)[-1].split("?", 1)[0]
                status, answer, extra = stand_in.answer(method, _params(self.headers.get("Content-Type", ""), body))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            request_queue_size = 1024
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def _allow(self, channel: str) -> bool:
        now = time.monotonic()
        tokens, at = self.buckets.get(channel, (float(BURST), now))
        tokens = min(float(BURST), tokens + (now - at) * POSTS_PER_S)
        if tokens < 1.0:
            self.buckets[channel] = (tokens, now)
            return False
        self.buckets[channel] = (tokens - 1.0, now)
        return True

    def answer(self, method: str, p: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self.lock:
            self.calls[method] += 1
            if method == "chat.postMessage":
                channel = str(p.get("channel"))
                if not self._allow(channel):
                    self.rate_limited += 1
                    return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}
                ts = f"1800000000.{next(self.ts):06d}"
                if p.get("thread_ts"):
                    self.posts[str(p["thread_ts"])].append(time.time())
                    blocks = p.get("blocks") or []
                    if isinstance(blocks, str):
                        blocks = json.loads(blocks)
                    block_id = next((b.get("block_id") for b in blocks if b.get("type") == "actions"), None)
                    if block_id:
                        self.replies.append({"channel": channel, "ts": ts, "block_id": block_id})
                return 200, {"ok": True, "channel": channel, "ts": ts}, {}
            if method == "auth.test":
                return 200, {"ok": True, "user_id": "U0BOT", "team_id": TEAM, "bot_id": "B0BOT"}, {}
            if method == "conversations.replies":
                return 200, {"ok": True, "messages": []}, {}
            return 200, {"ok": True, "ts": f"1800000000.{next(self.ts):06d}"}, {}


def _params(content_type: str, body: bytes) -> dict[str, Any]:
    if content_type.startswith("application/json"):
        return dict(json.loads(body or b"{}"))
    return dict(parse_qsl(body.decode()))


def write_config(
    folder: Path, slack_url: str, synchronous: str = "FULL", cache_entries: int = DEFAULT_MAX_ENTRIES
) -> Path:
    path = folder / "camel-bot.toml"
    path.write_text(f"""
mode = "http"
inbox_synchronous = "{synchronous}"
data_dir = "{folder / "data"}"
slack_api_url = "{slack_url}"
http_host = "127.0.0.1"
http_port = 0
http_threads = 32
inbox_workers = 32
corrections_per_hour = 100000
channel_posts_per_s = {POSTS_PER_S}
channel_burst = {BURST}
[model]
base_model = ""
trainable_layers = 2
cache_memory_entries = {cache_entries}
[learning]
# No training round during the measurement: it would measure training, not the event path.
threshold_new_labels = 100000000
schedule_cron = "0 3 1 1 *"
[[tasks]]
name = "support"
kind = "intent"
labels = {json.dumps(LABELS)}
channels = {json.dumps(CHANNELS)}
abstain_threshold = 0.3
""")
    return path


def train_adapter(config: Path, texts: list[str], labels: list[str]) -> None:
    """v0001 of the task, trained here on 30 BANKING77 messages per label, active before serve starts."""
    import camel
    import storage
    from bot import runtime
    from bot.settings import load_settings

    settings = load_settings(str(config))
    db = runtime.open_store(settings)
    result = camel.train(texts, labels, args=camel.TrainingArgs(max_epochs=4, seed=0, num_threads=2))
    folder = Path(settings.adapters_dir) / "support" / "v0001"
    camel.save_adapter(result.adapter, str(folder))
    storage.adapters.register_adapter(
        db,
        storage.NewAdapterVersion(
            task="support", version=1, path=str(folder), parent_version=None, run_id=None, metrics={}
        ),
    )
    storage.adapters.activate_adapter(db, "support", 1, reason="bench")
    db.close()


def start_bot(config: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    env = {k: v for k, v in project_env().items() if not k.startswith(("SLACK_", "CAMEL_BOT_"))}
    env.update(SLACK_BOT_TOKEN="xoxb-bench", SLACK_SIGNING_SECRET=SECRET, OMP_NUM_THREADS="2")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("wb"),
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)/slack/events", log_path.read_text(errors="replace"))
        if found:
            return process, int(found.group(1))
        if process.poll() is not None:
            raise SystemExit(f"serve exited: see {log_path}")
        time.sleep(0.1)
    raise SystemExit("serve did not start")


class Generator:
    """Open loop: request i is due at start + i / rate, whatever the answers before it did."""

    def __init__(self, port: int, stand_in: SlackStandIn, texts: list[str], rate: float, seconds: float) -> None:
        self.port, self.stand_in, self.texts = port, stand_in, texts
        self.rate, self.seconds = rate, seconds
        self.rng = random.Random(7)
        self.lock = threading.Lock()
        self.acks: list[tuple[str, int, float]] = []  # kind, status, ms
        self.sent_messages: dict[str, float] = {}  # ts -> send time, for acknowledged messages
        self.by_channel: dict[str, list[str]] = defaultdict(list)
        self.errors: Counter[str] = Counter()

    def run(self) -> float:
        pool = ThreadPoolExecutor(max_workers=96)
        start = time.monotonic()
        total = int(self.rate * self.seconds)
        for i in range(total):
            due = start + i / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            roll = self.rng.random()
            kind = "message" if roll < 0.80 else "reaction" if roll < 0.95 else "command" if roll < 0.975 else "click"
            pool.submit(self._send_one, kind, i)
        pool.shutdown(wait=True)
        return time.monotonic() - start

    def _send_one(self, kind: str, i: int) -> None:
        try:
            body, content_type, ts = self._build(kind, i)
        except IndexError:  # nothing to react to or click yet: send a message instead
            kind = "message"
            body, content_type, ts = self._build(kind, i)
        headers = signed_headers(SECRET, body, content_type)
        sent = time.time()
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            conn.request(
                "POST",
                "/slack/events",
                body=body.encode(),
                headers=headers,
            )
            status = conn.getresponse().status
            conn.close()
        except OSError as exc:
            with self.lock:
                self.errors[type(exc).__name__] += 1
                self.acks.append((kind, 0, 1000 * (time.perf_counter() - started)))
            return
        with self.lock:
            self.acks.append((kind, status, 1000 * (time.perf_counter() - started)))
            if kind == "message" and status == 200 and ts:
                self.sent_messages[ts] = sent

    def _build(self, kind: str, i: int) -> tuple[str, str, str | None]:
        channel = CHANNELS[i % len(CHANNELS)]
        user = f"U{self.rng.randrange(500):04d}"
        if kind == "message":
            ts = f"1790000000.{i:06d}"
            text = f"{self.texts[i % len(self.texts)]} (#{i})"  # distinct: every prediction uncached
            event: dict[str, Any] = {
                "type": "message",
                "channel": channel,
                "user": user,
                "text": text,
                "ts": ts,
                "team": TEAM,
            }
            with self.lock:
                self.by_channel[channel].append(ts)
            return _envelope(event, i), "application/json", ts
        if kind == "reaction":
            with self.lock:
                target = self.rng.choice(self.by_channel[channel] or list(itertools.chain(*self.by_channel.values())))
            event = {
                "type": "reaction_added",
                "user": user,
                "reaction": "white_check_mark",
                "item": {"type": "message", "channel": channel, "ts": target},
                "event_ts": f"1790000001.{i:06d}",
            }
            return _envelope(event, i), "application/json", None
        if kind == "command":
            text = "help" if i % 2 else f"predict {self.texts[(i * 7) % len(self.texts)]}"
            form = {
                "command": "/camel",
                "text": text,
                "user_id": user,
                "channel_id": channel,
                "team_id": TEAM,
                "response_url": self.stand_in.url + "respond",
                "trigger_id": f"{i}.1",
            }
            return urlencode(form), "application/x-www-form-urlencoded", None
        with self.stand_in.lock:
            reply = self.rng.choice(self.stand_in.replies)
        action = {
            "type": "external_select",
            "action_id": "camel_correct",
            "block_id": reply["block_id"],
            "selected_option": {"value": f"support|{LABELS[i % len(LABELS)]}"},
        }
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM},
            "user": {"id": user},
            "api_app_id": "A0LOAD",
            "trigger_id": f"{i}.2",
            "actions": [action],
            "channel": {"id": reply["channel"]},
            "response_url": self.stand_in.url + "respond",
            "container": {"type": "message", "channel_id": reply["channel"], "message_ts": reply["ts"]},
            "message": {"ts": reply["ts"], "type": "message"},
        }
        return urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded", None


def _envelope(event: dict[str, Any], i: int) -> str:
    return json.dumps(
        {
            "type": "event_callback",
            "team_id": TEAM,
            "api_app_id": "A0LOAD",
            "event": event,
            "event_id": f"Ev0LOAD{i:08d}",
            "event_time": int(time.time()),
        }
    )


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(
        MODULE,
        __doc__,
        writes="bench/results/load.json and load.md; with --inbox-synchronous both: load_synchronous.json and .md",
        data=shared_data("banking77"),
    )
    parser.add_argument("--rate", type=float, default=85.0, help="events per second (default 85)")
    parser.add_argument("--seconds", type=float, default=300.0, help="length of the steady phase (default 300)")
    parser.add_argument(
        "--inbox-synchronous",
        choices=("FULL", "NORMAL", "both"),
        default="FULL",
        help="the inbox insert's PRAGMA synchronous (default FULL, the bot's); both: NORMAL then FULL, side by side",
    )
    parser.add_argument(
        "--cache-entries",
        type=int,
        default=DEFAULT_MAX_ENTRIES,
        help=f"the bot's [model] cache_memory_entries (default {DEFAULT_MAX_ENTRIES:,}, the bot's); lower it so "
        "a run of a few minutes reaches the cap and shows whether RSS stays flat after it",
    )
    args = parser.parse_args(argv)
    wall = time.perf_counter()
    require_data(["banking77"])
    train_texts, train_labels = read_split("banking77", "train")
    keep = [i for i, label in enumerate(train_labels) if label in LABELS]
    texts, labels = sample_per_class([train_texts[i] for i in keep], [train_labels[i] for i in keep], 30, seed=0)
    message_texts, _ = read_split("banking77", "test")
    load_before = os.getloadavg()
    facts = machine_facts(os.cpu_count() or 1)
    modes = ["NORMAL", "FULL"] if args.inbox_synchronous == "both" else [args.inbox_synchronous]
    phases: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="camel-load-") as tmp:
        trained = Path(tmp) / "trained"
        trained.mkdir()
        print("training the adapter ...", flush=True)
        train_adapter(write_config(trained, "http://127.0.0.1:9/api/"), texts, labels)
        for mode in modes:
            # Each phase on its own copy of the freshly trained data folder: an empty inbox, the same adapter.
            folder = Path(tmp) / mode
            shutil.copytree(trained / "data", folder / "data")
            phases[mode] = run_phase(folder, mode, message_texts, args.rate, args.seconds, args.cache_entries)
    load_after = os.getloadavg()
    argv_recorded = ["--rate", f"{args.rate:g}", "--seconds", f"{args.seconds:g}"]
    if args.inbox_synchronous != "FULL":
        argv_recorded += ["--inbox-synchronous", args.inbox_synchronous]
    if args.cache_entries != DEFAULT_MAX_ENTRIES:
        argv_recorded += ["--cache-entries", str(args.cache_entries)]
    engine = next((p["engine"] for p in phases.values() if p.get("engine")), None)
    facts = {**facts, "engine": engine}
    machine = {
        **facts,
        "line": machine_line(facts["torch_threads"], engine, facts),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
    }
    shared = {
        "total_s": round(time.perf_counter() - wall, 1),
        "command": recorded_command(MODULE, argv_recorded),
        "machine": machine,
        "data": str(DATA_DIR / "banking77"),
    }
    if args.inbox_synchronous == "both":
        result: dict[str, Any] = {"phases": phases, **shared}
        write_results("load_synchronous", result, synchronous_markdown(result))
    else:
        result = {**phases[modes[0]], **shared}
        write_results("load", result, markdown(result))
    print(json.dumps(result, indent=2))
    return 0


def run_phase(
    folder: Path, synchronous: str, message_texts: list[str], rate: float, seconds: float, cache_entries: int
) -> dict[str, Any]:
    """One `serve` on `folder`'s data, one steady phase and its drain; the figures of that phase."""
    stand_in = SlackStandIn()
    config = write_config(folder, stand_in.url, synchronous, cache_entries)
    process, port = start_bot(config, folder / "serve.log")
    rss: list[tuple[float, float]] = []
    sampling = threading.Event()

    def sample() -> None:
        started = time.monotonic()
        while not sampling.is_set():
            rss.append((time.monotonic() - started, rss_mb(process.pid)))
            sampling.wait(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    print(f"steady phase (inbox synchronous={synchronous}): {rate} events/s for {seconds} s ...", flush=True)
    generator = Generator(port, stand_in, message_texts, rate, seconds)
    elapsed = generator.run()
    steady_end = len(rss)
    deadline = time.monotonic() + DRAIN_S
    while time.monotonic() < deadline:
        with stand_in.lock:
            missing = [ts for ts in generator.sent_messages if ts not in stand_in.posts]
        if not missing:
            break
        time.sleep(1.0)
    metrics = ""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/metrics")
        metrics = conn.getresponse().read().decode()
        conn.close()
    except OSError:
        pass
    sampling.set()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    log_tail = (folder / "serve.log").read_text(errors="replace")
    # Acknowledged but not yet answered when the run ended: still in the inbox, so the next
    # start answers them (backlog), unlike an event that is nowhere (lost).
    with sqlite3.connect(folder / "data" / "camel.db") as db:
        waiting = {row[0] for row in db.execute("SELECT event_id FROM inbox WHERE done_at IS NULL")}
        inbox_outcomes = dict(db.execute("SELECT outcome, COUNT(*) FROM inbox GROUP BY outcome").fetchall())
    acks = generator.acks
    ok = [a for a in acks if 200 <= a[1] < 300]
    non_2xx = len(acks) - len(ok)
    with stand_in.lock:
        posts = {ts: list(times) for ts, times in stand_in.posts.items()}
    reply_ms = [1000 * (posts[ts][0] - sent) for ts, sent in generator.sent_messages.items() if ts in posts]
    unanswered = [ts for ts in generator.sent_messages if ts not in posts]
    backlog = sum(1 for ts in unanswered if f"Ev0LOAD{int(ts.split('.')[1]):08d}" in waiting)
    lost = len(unanswered) - backlog
    first_answer, last_answer = (
        (min(t[0] for t in posts.values()), max(t[0] for t in posts.values())) if posts else (0, 0)
    )
    doubled = sum(len(times) - 1 for times in posts.values() if len(times) > 1)
    steady_rss = [mb for _, mb in rss[:steady_end]]
    half = steady_rss[len(steady_rss) // 2 :]
    rss_growth = (max(half) - half[0]) / half[0] if half and half[0] else None
    distinct = len(generator.sent_messages)
    lowered = (
        ""
        if cache_entries == DEFAULT_MAX_ENTRIES
        else f" (lowered for this run from the bot's {DEFAULT_MAX_ENTRIES:,})"
    )
    reached = distinct > cache_entries
    cache_note = (
        f"The serving feature cache's memory cap ([model] cache_memory_entries) was {cache_entries:,} states"
        f"{lowered}; the run sent {distinct:,} distinct message texts, so the cap was "
        + (
            f"reached after about {cache_entries / max(1e-9, distinct / elapsed):.0f} s of the steady phase. "
            if reached
            else "never reached (about 15 KB of memory per new text until it is). "
        )
        + "`rss_flat` means less than 5% growth over the second half of the steady phase."
    )
    engine_line = re.search(r"bottom engine ([a-z0-9-]+)", log_tail)
    requeued = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r'camel_inbox_requeued_total\{reason="([a-z_]+)"\} ([0-9.e+]+)', metrics)
    }
    return {
        "sustained_events_s": round(len(ok) / elapsed, 2) if non_2xx == 0 else None,
        "offered_events_s": rate,
        "inbox_synchronous": synchronous,
        "acknowledged_2xx": len(ok),
        "ack_p50_ms": pct([a[2] for a in acks], 0.50),
        "ack_p99_ms": pct([a[2] for a in acks], 0.99),
        "ack_p99_ms_by_kind": {k: pct([a[2] for a in acks if a[0] == k], 0.99) for k in sorted({a[0] for a in acks})},
        "reply_p50_ms": pct(reply_ms, 0.50),
        "reply_p99_ms": pct(reply_ms, 0.99),
        "messages_acknowledged": len(generator.sent_messages),
        "lost": lost,
        "unanswered_backlog_in_inbox": backlog,
        "replies_per_s": round(len(posts) / (last_answer - first_answer), 2) if last_answer > first_answer else None,
        "inbox_outcomes": {str(k): v for k, v in inbox_outcomes.items()},
        "doubled": doubled,
        "non_2xx": non_2xx,
        "client_errors": dict(generator.errors),
        "peak_rss_mb": round(max(mb for _, mb in rss), 1) if rss else None,
        "rss_mb_second_half_start_end": [round(half[0], 1), round(half[-1], 1)] if half else None,
        "rss_flat": bool(rss_growth is not None and rss_growth < 0.05),
        "rss_note": cache_note,
        "cache_memory_entries": cache_entries,
        "cache_cap_reached": reached,
        "engine": engine_line.group(1) if engine_line else None,
        "stand_in_429s": stand_in.rate_limited,
        "bot_requeued": requeued,
        "kinds_sent": dict(Counter(a[0] for a in acks)),
        "steady_seconds": round(elapsed, 1),
        "tracebacks_in_bot_log": log_tail.count("Traceback"),
        "bot_log_errors": [line[:400] for line in log_tail.splitlines() if '"level": "ERROR"' in line][:5],
    }


def markdown(r: dict[str, Any]) -> str:
    return f"""# Load: the Slack event path under a steady flood

Command: `{r["command"]}` (steady phase {r["steady_seconds"]} s, then up to {DRAIN_S:.0f} s of drain).
Machine: {r["machine"]["line"]}; load average (1, 5, 15 min) before
{r["machine"]["loadavg_before"]}, after {r["machine"]["loadavg_after"]}.

The real `camel-bot serve` (waitress, request guard, Bolt, durable inbox with 32 workers,
predictions batched across them, SQLite, all-MiniLM-L6-v2 with an adapter trained on BANKING77)
in its own process; on loopback a Web API stand-in answering after 100-300 ms and allowing one
post per second per channel (burst 3, then 429 with Retry-After), and an open-loop generator:
{r["offered_events_s"]} signed events/s over 100 channels, 80% messages with distinct texts,
15% reactions, 5% slash commands and menu clicks.

| figure | value | target |
|---|---|---|
| sustained events/s with 0 non-2xx | {r["sustained_events_s"]} | >= 85 |
| non-2xx answers | {r["non_2xx"]} | 0 |
| ack p50 / p99 | {r["ack_p50_ms"]} / {r["ack_p99_ms"]} ms | p99 < 300 ms |
| event -> reply p50 / p99 | {r["reply_p50_ms"]} / {r["reply_p99_ms"]} ms | p99 < 2 s |
| lost / doubled | {r["lost"]} / {r["doubled"]} | 0 / 0 |
| acknowledged, unanswered at the end, still in the inbox | {r["unanswered_backlog_in_inbox"]} | |
| replies per second (first to last reply) | {r["replies_per_s"]} | |
| peak RSS | {r["peak_rss_mb"]} MB | flat after the cache cap |
| RSS flat (second half) | {r["rss_flat"]} ({r["rss_mb_second_half_start_end"]} MB) | |
| 429s from the stand-in | {r["stand_in_429s"]} | honoured through the queue |

ack p99 by kind: {r["ack_p99_ms_by_kind"]}; the bot's re-queues: {r["bot_requeued"]};
messages acknowledged: {r["messages_acknowledged"]}; inbox outcomes: {r["inbox_outcomes"]};
tracebacks in the bot's log: {r["tracebacks_in_bot_log"]}; its ERROR lines: {r["bot_log_errors"]}.

{r["rss_note"]}

Slack's limits for comparison: 30,000 events per workspace per hour (8.3/s) and an answer within
3 s; Slack disables event delivery when more than 5% of deliveries in 60 minutes fail.
"""


def synchronous_markdown(r: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {mode} | {p['ack_p50_ms']} / {p['ack_p99_ms']} ms | {p['sustained_events_s']} | {p['non_2xx']} | "
        f"{p['lost']} / {p['doubled']} | {p['reply_p50_ms']} / {p['reply_p99_ms']} ms | {p['steady_seconds']} s |"
        for mode, p in r["phases"].items()
    )
    return f"""# Load: what syncing each acknowledged event to disk costs

Command: `{r["command"]}`: one adapter trained once, then the same steady phase twice, each with
a fresh `camel-bot serve` on its own copy of the data folder: the inbox insert at
`synchronous=NORMAL` (survives a killed process), then at `FULL` (the bot's default: the WAL is
synced at the insert's commit, so the event also survives an OS crash or power loss).
Machine: {r["machine"]["line"]}; load average before
{r["machine"]["loadavg_before"]}, after {r["machine"]["loadavg_after"]}. Everything else as in `load.md`.

| inbox insert | ack p50 / p99 | events/s, 0 non-2xx | non-2xx | lost / doubled | reply p50 / p99 | steady |
|---|---|---|---|---|---|---|
{rows}

The two phases ran one after the other on a machine shared with other jobs, so part of any
difference is the load of that minute; the load averages above bound it.
"""


if __name__ == "__main__":
    sys.exit(main())
