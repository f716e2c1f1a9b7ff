"""The load benchmark: many Chromium sessions drawing while a model trains.

First a training run's epoch time is measured on an idle machine. Then the app is started, N
headless Chromium sessions open the Draw page and draw, read the Prediction and clear the canvas
in a loop for the given time, while the same training runs again in its own process. Reported:
errors, mouse-up → Prediction p50/p95 under load, and the training's epoch time under load
against idle.

The training runs in ``python -m bench.load SPEC``, which prints one JSON line per
finished epoch with its wall-clock start and end, so epochs can be matched to the load window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.browser import (
    PREDICTION_TIMEOUT_MS,
    PROJECT_ROOT,
    STROKES,
    VIEWPORT,
    AppServer,
    clear_canvas,
    launch_browser,
    open_draw_page,
    page_errors,
    time_stroke,
)
from bench.inference import percentiles

EPOCH_PREFIX = "BENCH-EPOCH "
WARM_UP_TIMEOUT_MS = 300_000  # the first answer loads the model, on a busy machine


@dataclass(frozen=True)
class ProbeSpec:
    """The training whose epoch time is watched."""

    architecture: str = "cnn"
    train_size: int = 10_000
    epochs: int = 500  # far more than fit in the window: the probe is stopped from outside
    data_path: str | None = None


class TrainingProbe:
    """The training child, with a thread collecting the epochs it reports as they finish."""

    def __init__(self, spec: ProbeSpec):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([sys.executable, "-m", "bench.load", json.dumps(asdict(spec))],
                                        stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=env,
                                        cwd=PROJECT_ROOT, start_new_session=True)
        self.epochs: list[dict[str, float]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.startswith(EPOCH_PREFIX):
                self.epochs.append(json.loads(line[len(EPOCH_PREFIX):]))

    def wait_epochs(self, count: int, timeout: float = 1800.0) -> None:
        """Block until ``count`` epochs have finished; raises when the child died or it took too long."""
        deadline = time.monotonic() + timeout
        while len(self.epochs) < count:
            if self.process.poll() is not None and not self.reader.is_alive():
                raise RuntimeError(f"the training child ended (exit {self.process.returncode}) after "
                                   f"{len(self.epochs)} epoch(s): {self.last_words()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"training did not finish {count} epoch(s) within {timeout:.0f} s")
            time.sleep(0.2)

    def stop(self) -> list[dict[str, float]]:
        """Stop the child (if still running) and return every epoch it reported."""
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=60)
        self.reader.join(timeout=10)
        self.stderr.close()
        return list(self.epochs)

    def last_words(self) -> str:
        """The last line the child wrote to stderr (its error, when it failed)."""
        self.stderr.seek(0)
        lines = self.stderr.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1][:300] if lines else "no output"


def idle_epochs(spec: ProbeSpec, epochs: int) -> tuple[list[float], float]:
    """Epoch times of ``epochs`` epochs (after the first, which includes tracing) on an idle
    machine, and how many cores the training kept busy meanwhile."""
    probe = TrainingProbe(spec)
    try:
        probe.wait_epochs(1)
        before, started = cpu_seconds_by_role(-1, probe.process.pid)["training"], time.monotonic()
        probe.wait_epochs(epochs + 1)
        cores = (cpu_seconds_by_role(-1, probe.process.pid)["training"] - before) / (time.monotonic() - started)
    finally:
        rows = probe.stop()
    return [row["seconds"] for row in rows[1:]], round(cores, 2)


def epochs_within(rows: list[dict[str, float]], start: float, end: float) -> list[float]:
    """Seconds of the epochs that began and ended inside [start, end] (wall-clock times).

    The first epoch is left out: it also traces the model.
    """
    return [row["seconds"] for row in rows if row["epoch"] > 1 and row["start"] >= start and row["end"] <= end]


def _first_line(error: Exception) -> str:
    return f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:160]}"


async def _open_warm(browser, url: str, errors: list[str]):
    """Open the Draw page and get one answer (loading the model) before the clock starts."""
    context = await browser.new_context(viewport=VIEWPORT)
    page, box = await open_draw_page(context, url)
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    await time_stroke(page, box, STROKES[0], timeout_ms=WARM_UP_TIMEOUT_MS)
    await clear_canvas(page, timeout_ms=WARM_UP_TIMEOUT_MS)
    return context, page, box


@dataclass
class _Window:
    """Shared by the sessions: how many are warmed up, when to start drawing, when to stop."""

    warmed: int = 0
    start: asyncio.Event = field(default_factory=asyncio.Event)
    deadline: float = 0.0


async def _session(browser, url: str, window: _Window, offset: int, think_seconds: float) -> dict[str, Any]:
    """One visitor: draw, wait for the Prediction, read it for ``think_seconds``, clear, again,
    until the window closes."""
    latencies: list[float] = []
    errors: list[str] = []
    context = None
    try:
        context, page, box = await _open_warm(browser, url, errors)
    except Exception as error:  # noqa: BLE001 - the page never became usable: that is an error too
        errors.append(f"warm-up: {_first_line(error)}")
    window.warmed += 1
    await window.start.wait()
    strokes = 0
    while context is not None and time.time() < window.deadline:
        try:
            timing = await time_stroke(page, box, STROKES[(offset + strokes) % len(STROKES)])
            latencies.append(timing["prediction"])
            await asyncio.sleep(think_seconds)
            await clear_canvas(page)
        except Exception as error:  # noqa: BLE001 - a timeout or a lost page is what we count
            errors.append(_first_line(error))
            await asyncio.sleep(1)
        strokes += 1
    if context is not None:
        errors += await page_errors(page)
    # The context stays open: closing it ends its renderer, and with it the CPU time it used.
    return {"latencies": latencies, "errors": errors, "context": context}


def lower_browser_priority(nice: int, exclude: set[int]) -> list[int]:
    """Set the Linux autogroup niceness of every session our descendants lead, except those in
    ``exclude`` (the server's): Chromium's. Returns the session leaders changed.

    The browsers stand in for the visitors' own machines. With ``nice`` 19 they get only the CPU
    that the server and the training leave, which shows what the server costs the training
    without the browsers' share. Chromium resets its threads' own nice values, but not its
    session's, so the autogroup is the knob (it needs ``sched_autogroup`` on).
    """
    import psutil

    changed = []
    for child in psutil.Process().children(recursive=True):
        try:
            if os.getsid(child.pid) != child.pid or child.pid in exclude:
                continue
            with open(f"/proc/{child.pid}/autogroup", "w", encoding="ascii") as group:
                group.write(str(nice))
        except (OSError, psutil.Error):  # ended meanwhile
            continue
        changed.append(child.pid)
    return changed


def cpu_seconds_by_role(server_pid: int, probe_pid: int) -> dict[str, float]:
    """CPU seconds used so far by the app server, the training, the load generator and the rest,
    and the machine's idle seconds.

    Processes are told apart by session: the server and the training each lead their own, and
    the generator is this process's session plus every session its descendants belong to
    (Chromium starts its own). The browsers stand in for the visitors' own machines. A process
    that has ended no longer counts, so call this before closing any browser context.
    """
    import psutil

    generator = psutil.Process()
    generator_sessions = {os.getsid(0)}
    for child in generator.children(recursive=True):
        with contextlib.suppress(OSError, psutil.Error):
            generator_sessions.add(os.getsid(child.pid))
    roles = {"server": 0.0, "training": 0.0, "load_generator": 0.0, "rest_of_machine": 0.0}
    for process in psutil.process_iter():
        try:
            session, times = os.getsid(process.pid), process.cpu_times()
        except (OSError, psutil.Error):  # ended meanwhile, or not ours to read
            continue
        role = {server_pid: "server", probe_pid: "training"}.get(session)
        if role is None:
            role = "load_generator" if session in generator_sessions else "rest_of_machine"
        roles[role] += times.user + times.system
    roles["idle"] = idle_cpu_seconds()
    return roles


def idle_cpu_seconds() -> float:
    """CPU seconds all cores have spent idle since boot (Linux ``/proc/stat``; 0 elsewhere)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = stat.readline().split()
    except OSError:
        return 0.0
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")  # idle + waiting for I/O


async def _drive(url: str, server_pid: int, sessions: int, seconds: float, think_seconds: float,
                 probe_spec: ProbeSpec, browser_nice: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await launch_browser(playwright)
        if browser_nice and not lower_browser_priority(browser_nice, exclude={server_pid}):
            raise RuntimeError("found no Chromium session to lower the priority of")
        window = _Window()
        tasks = [asyncio.create_task(_session(browser, url, window, index, think_seconds))
                 for index in range(sessions)]
        while window.warmed < sessions:
            await asyncio.sleep(0.2)
        probe = TrainingProbe(probe_spec)
        try:
            await asyncio.to_thread(probe.wait_epochs, 1)  # past tracing: steady epochs from here
            cpu_before = cpu_seconds_by_role(server_pid, probe.process.pid)
            started = time.time()
            window.deadline = started + seconds
            window.start.set()
            results = await asyncio.gather(*tasks)
            ended = time.time()
            cpu_after = cpu_seconds_by_role(server_pid, probe.process.pid)
        finally:
            rows = await asyncio.to_thread(probe.stop)
        for result in results:
            context = result.pop("context")
            if context is not None:
                await context.close()
        await browser.close()
    cpu = {role: round(cpu_after[role] - cpu_before[role], 1) for role in cpu_before}
    return {"results": results, "window": (started, ended), "epochs": rows, "cpu_seconds": cpu}


def measure_load(models_dir: str | os.PathLike, data_path: str | None, *, sessions: int, seconds: float,
                 train_size: int, idle_epoch_count: int, think_seconds: float = 1.0,
                 browser_nice: int = 0) -> dict[str, Any]:
    """Idle epoch time first, then ``sessions`` browsers drawing for ``seconds`` while training runs.

    Each session reads every answer for ``think_seconds`` before it clears and draws the next
    digit, as a person would; 0 makes them draw back to back, which is a harder load than people.
    ``browser_nice`` above 0 lowers the browsers' CPU priority (see :func:`lower_browser_priority`).
    """
    spec = ProbeSpec(train_size=train_size, data_path=data_path)
    idle, idle_cores = idle_epochs(spec, idle_epoch_count)
    with AppServer(models_dir, data_path) as server:
        server.wait_healthy()
        driven = asyncio.run(_drive(server.url, server.process.pid, sessions, seconds, think_seconds, spec,
                                    browser_nice))
        rss_mb = round(server.rss_bytes() / 2**20)
    latencies = [ms for result in driven["results"] for ms in result["latencies"]]
    errors = [error for result in driven["results"] for error in result["errors"]]
    loaded = epochs_within(driven["epochs"], *driven["window"])
    window_seconds = driven["window"][1] - driven["window"][0]
    idle_median, loaded_median = percentiles(idle)["p50"], percentiles(loaded)["p50"]
    return {
        "sessions": sessions, "seconds": seconds, "think_seconds": think_seconds, "browser_nice": browser_nice,
        "strokes": len(latencies), "errors": len(errors),
        "error_samples": errors[:10], "mouse_up_to_prediction_ms": percentiles(latencies),
        "training": {"architecture": spec.architecture, "train_size": train_size,
                     "idle_epoch_s": idle, "loaded_epoch_s": loaded, "idle_cores_used": idle_cores,
                     "loaded_cores_used": round(driven["cpu_seconds"]["training"] / window_seconds, 2),
                     "slowdown": round(loaded_median / idle_median, 2) if idle_median and loaded_median else None},
        "server_rss_mb": rss_mb, "timeout_ms": PREDICTION_TIMEOUT_MS,
        "cpu_seconds": {**driven["cpu_seconds"], "available": round(window_seconds * (os.cpu_count() or 1), 1)},
        "cpu_ms_per_answer": {role: round(1000 * driven["cpu_seconds"][role] / len(latencies)) if latencies else None
                              for role in ("server", "load_generator")},
    }


def probe_main(spec: ProbeSpec) -> None:
    """Child: train and print each finished epoch's wall-clock start, end and length."""
    from digitlab.data import load_mnist
    from digitlab.training import TrainConfig, train

    data = load_mnist(spec.data_path, allow_download=False)
    last = {"end": time.time()}

    def report(event) -> None:
        if event.kind == "start":
            last["end"] = time.time()
        elif event.kind == "epoch":
            now = time.time()
            row = {"epoch": event.epoch, "start": last["end"], "end": now, "seconds": round(now - last["end"], 3)}
            last["end"] = now
            print(EPOCH_PREFIX + json.dumps(row), flush=True)

    train(TrainConfig(spec.architecture, epochs=spec.epochs, train_size=spec.train_size), data, on_event=report)


if __name__ == "__main__":
    probe_main(ProbeSpec(**json.loads(sys.argv[1])))
