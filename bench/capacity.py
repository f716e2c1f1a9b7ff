"""The ``capacity`` part: how many drawing sessions one server answers in time, measured on the
server alone.

A load generator that speaks Streamlit's own websocket protocol (``/_stcore/stream``, protobuf
``BackMsg`` up and ``ForwardMsg`` down) instead of driving browsers: the browsers belong on the
visitors' devices, and eight headless Chromiums on this machine's two cores used ~700 ms of CPU
per answer themselves (FACTS.md). Each session opens the Draw page the way the browser does (a
``rerun_script`` with no widget state), finds the drawing pad in the page's deltas, then every
:data:`INTERVAL_SECONDS` sets the pad's component value to a real pad PNG the way the pad's
frontend does (a ``json_value`` ``{"drawing": <data URL>}`` for the pad's widget id, rerunning only
the pad's fragment) and times the answer: from sending the message to ``script_finished``, with a
"Prediction" metric among the deltas (else it counts as an error).

Reported per level (1, 5, 10, 20, 40, 80 sessions): p50/p95 of that time, answers, errors, and
the server process's CPU per answer; ``max_sessions_p95_300ms`` is the most sessions for which
p95 stayed ≤ 300 ms at that level and every smaller one. Then the same with one training
running (``digitlab train``, a separate process): 20 sessions' p95 and the epoch time against the
same training's idle epoch time.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LEVELS = (1, 5, 10, 20, 40, 80)
QUICK_LEVELS = (1, 5)
INTERVAL_SECONDS = 2.0  # each session draws a digit every 2 s
LEVEL_SECONDS = 20.0
QUICK_LEVEL_SECONDS = 6.0
ANSWER_TIMEOUT_SECONDS = 15.0
OPEN_AT_ONCE = 4  # sessions opened concurrently (each first run renders the whole page)
TARGET_P95_MS = 300.0
TRAINING_SESSIONS = 20
TRAINING = ["--arch", "lenet", "--epochs", "3", "--train-size", "12000", "--no-augment"]
QUICK_TRAINING = ["--arch", "mlp", "--epochs", "2", "--train-size", "2000", "--no-augment"]
PAD_SIZE = 280


def pad_pictures() -> list[str]:
    """Data URLs of a few digits as the pad sends them: white strokes on black, 280×280 PNG."""
    from PIL import Image, ImageDraw

    shapes = [
        lambda draw: draw.line([(80, 60), (200, 60), (120, 230)], fill="white", width=18),  # 7
        lambda draw: draw.line([(140, 40), (140, 240)], fill="white", width=18),  # 1
        lambda draw: draw.ellipse([(80, 40), (200, 240)], outline="white", width=18),  # 0
        lambda draw: draw.line([(170, 240), (170, 40), (80, 170), (210, 170)], fill="white", width=18),  # 4
    ]
    urls = []
    for shape in shapes:
        picture = Image.new("RGBA", (PAD_SIZE, PAD_SIZE), (0, 0, 0, 255))
        shape(ImageDraw.Draw(picture))
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        urls.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"))
    return urls


class Session:
    """One visitor on the Draw page, over one websocket."""

    def __init__(self, url: str):
        self.url = url
        self.socket: Any = None
        self.page_hash = ""
        self.pad_id = ""
        self.fragment_id = ""

    async def open(self) -> None:
        """Connect and run the page once, as a browser's first visit does; find the pad."""
        import websockets
        from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: TID251 - the protocol spoken to the app

        self.socket = await websockets.connect(self.url, subprotocols=["streamlit"], max_size=None)
        message = BackMsg()
        message.rerun_script.query_string = ""
        await self.socket.send(message.SerializeToString())
        await self._until_finished(on_message=self._look_for_pad)
        if not self.pad_id:
            raise RuntimeError("the Draw page showed no drawing pad")

    def _look_for_pad(self, message: Any) -> None:
        kind = message.WhichOneof("type")
        if kind == "new_session":
            self.page_hash = message.new_session.page_script_hash
        elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
            element = message.delta.new_element
            if element.WhichOneof("type") == "bidi_component" and element.bidi_component.id.endswith("draw_pad"):
                self.pad_id, self.fragment_id = element.bidi_component.id, message.delta.fragment_id

    async def draw(self, picture: str) -> float:
        """Send one drawing; returns the milliseconds until the answer (raises if there is none)."""
        from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: TID251 - the protocol spoken to the app

        message = BackMsg()
        state = message.rerun_script
        state.page_script_hash, state.fragment_id = self.page_hash, self.fragment_id
        widget = state.widget_states.widgets.add()
        widget.id, widget.json_value = self.pad_id, json.dumps({"drawing": picture})
        seen = {"prediction": False, "exception": False}

        def look(reply: Any) -> None:
            if reply.WhichOneof("type") == "delta" and reply.delta.WhichOneof("type") == "new_element":
                element = reply.delta.new_element
                kind = element.WhichOneof("type")
                seen["prediction"] |= kind == "metric" and element.metric.label == "Prediction"
                seen["exception"] |= kind == "exception"

        started = time.perf_counter()
        await self.socket.send(message.SerializeToString())
        await asyncio.wait_for(self._until_finished(on_message=look), ANSWER_TIMEOUT_SECONDS)
        if seen["exception"] or not seen["prediction"]:
            raise RuntimeError("the answer had no Prediction" + (" (an exception)" if seen["exception"] else ""))
        return (time.perf_counter() - started) * 1000

    async def _until_finished(self, on_message) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: TID251 - the protocol spoken to the app

        while True:
            reply = ForwardMsg()
            reply.ParseFromString(await self.socket.recv())
            on_message(reply)
            if reply.WhichOneof("type") == "script_finished":
                return

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()


@dataclass
class Level:
    """What one level of load produced."""

    sessions: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    server_cpu_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        answers = len(self.latencies_ms)
        ordered = sorted(self.latencies_ms)
        return {"sessions": self.sessions, "answers": answers, "errors": self.errors,
                "p50_ms": _percentile(ordered, 50), "p95_ms": _percentile(ordered, 95),
                "server_cpu_ms_per_answer": round(self.server_cpu_s * 1000 / answers, 1) if answers else None}


def _percentile(ordered: list[float], percent: float) -> float | None:
    """The nearest-rank percentile of sorted values."""
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, math.ceil(percent / 100 * len(ordered)) - 1))
    return round(ordered[index], 1)


class LoadGenerator:
    """A pool of sessions on one server; :meth:`run_level` makes ``n`` of them draw for a while."""

    def __init__(self, url: str, server_pid: int):
        import psutil

        self.url = url
        self.server = psutil.Process(server_pid)
        self.sessions: list[Session] = []
        self.pictures = pad_pictures()

    def _cpu(self) -> float:
        times = self.server.cpu_times()
        return times.user + times.system

    async def grow(self, count: int) -> None:
        """Open sessions until ``count`` are open, :data:`OPEN_AT_ONCE` at a time."""
        while len(self.sessions) < count:
            batch = [Session(self.url) for _ in range(min(OPEN_AT_ONCE, count - len(self.sessions)))]
            await asyncio.gather(*(session.open() for session in batch))
            self.sessions.extend(batch)

    async def run_level(self, count: int, seconds: float, until=None) -> Level:
        """``count`` sessions draw every :data:`INTERVAL_SECONDS` for ``seconds`` (or until
        ``until()`` is true)."""
        await self.grow(count)
        level = Level(count)
        cpu_before = self._cpu()
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(self._draw_loop(session, index, level, deadline, until)
                               for index, session in enumerate(self.sessions[:count])))
        level.server_cpu_s = self._cpu() - cpu_before
        return level

    async def _draw_loop(self, session: Session, index: int, level: Level, deadline: float, until) -> None:
        rng = random.Random(index)
        next_send = time.monotonic() + rng.uniform(0, INTERVAL_SECONDS)  # spread the sessions out
        drawing = index
        while True:
            await asyncio.sleep(max(0.0, next_send - time.monotonic()))
            if time.monotonic() >= deadline or (until is not None and until()):
                return
            try:
                level.latencies_ms.append(await session.draw(self.pictures[drawing % len(self.pictures)]))
            except (RuntimeError, TimeoutError, OSError) as error:
                level.errors += 1
                if not isinstance(error, RuntimeError):
                    return  # the connection is gone or hopelessly late: this browser session stops
            drawing += 1
            next_send += INTERVAL_SECONDS

    async def close(self) -> None:
        await asyncio.gather(*(session.close() for session in self.sessions), return_exceptions=True)


def measure_capacity(models_dir: str, data_path: str | None, quick: bool) -> dict[str, Any]:
    """The curve over :data:`LEVELS`, then one training with and without 20 sessions drawing."""
    from bench.browser import AppServer

    levels, seconds = (QUICK_LEVELS, QUICK_LEVEL_SECONDS) if quick else (LEVELS, LEVEL_SECONDS)
    with AppServer(models_dir, data_path) as server:
        server.wait_healthy()
        url = server.url.replace("http://", "ws://") + "_stcore/stream"
        curve, training = asyncio.run(_measure(url, server.process.pid, levels, seconds, data_path, quick))
    return {"interval_s": INTERVAL_SECONDS, "level_seconds": seconds, "curve": curve,
            "max_sessions_p95_300ms": max_sessions_within(curve, TARGET_P95_MS), "with_training": training}


def max_sessions_within(curve: dict[str, dict[str, Any]], limit_ms: float) -> int:
    """The most sessions whose p95 stayed ≤ ``limit_ms`` (with no errors) there and at every
    smaller level; 0 when even the first level missed."""
    best = 0
    for level in curve.values():
        if level["p95_ms"] is None or level["p95_ms"] > limit_ms or level["errors"]:
            break
        best = level["sessions"]
    return best


async def _measure(url: str, pid: int, levels, seconds: float, data_path: str | None, quick: bool):
    generator = LoadGenerator(url, pid)
    try:
        curve = {}  # by the number of sessions, as a string (a JSON key)
        for count in levels:
            curve[str(count)] = (await generator.run_level(count, seconds)).summary()
            print(f"bench: capacity {curve[str(count)]}", file=sys.stderr, flush=True)
        training = await _with_training(generator, data_path, quick)
    finally:
        await generator.close()
    return curve, training


async def _with_training(generator: LoadGenerator, data_path: str | None, quick: bool) -> dict[str, Any]:
    """The same training idle and then under :data:`TRAINING_SESSIONS` drawing sessions."""
    arguments = QUICK_TRAINING if quick else TRAINING
    sessions = min(TRAINING_SESSIONS, 5) if quick else TRAINING_SESSIONS
    with tempfile.TemporaryDirectory(prefix="digitlab-capacity-") as scratch:
        idle = await asyncio.to_thread(_train, Path(scratch) / "idle", data_path, arguments)
        process = _start_training(Path(scratch) / "loaded", data_path, arguments)
        level = await generator.run_level(sessions, 24 * 3600, until=lambda: process.poll() is not None)
        loaded = _finish_training(process, Path(scratch) / "loaded")
    # The first epoch also traces the model's functions: compare the later ones when there are any.
    idle_epoch, loaded_epoch = statistics.median(idle[1:] or idle), statistics.median(loaded[1:] or loaded)
    return {"training": " ".join(arguments), "sessions": sessions, **level.summary(),
            "idle_epoch_s": [round(value, 2) for value in idle],
            "loaded_epoch_s": [round(value, 2) for value in loaded],
            "slowdown": round(loaded_epoch / idle_epoch, 2)}


def _train(store: Path, data_path: str | None, arguments: list[str]) -> list[float]:
    return _finish_training(_start_training(store, data_path, arguments), store)


def _start_training(store: Path, data_path: str | None, arguments: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "digitlab", "train", *arguments, "--name", "capacity", "--models", str(store)]
    if data_path:
        command += ["--data", data_path]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _finish_training(process: subprocess.Popen, store: Path) -> list[float]:
    """Wait for the training; its card's per-epoch wall times."""
    _, errors = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"the training failed: {errors.strip().splitlines()[-1] if errors.strip() else '?'}")
    card = json.loads((store / "capacity.json").read_text(encoding="utf-8"))
    return [row["seconds"] for row in card["history"]]
