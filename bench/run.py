"""``python -m bench``: accuracy, speed and memory, measured on this machine.

Parts (``--parts``, comma-separated):

- ``training``: per family, our recipe against the tutorial's, as time to a test accuracy
  (:mod:`bench.training`);
- ``inference``: preprocessing and each model on one drawing, against ``model.predict``
  (:mod:`bench.inference`);
- ``app`` and ``browser``: cold start, memory, and mouse-up → Prediction in real Chromium
  (:mod:`bench.browser`);
- ``load`` (or ``--load``): many browser sessions while a model trains (:mod:`bench.load`);
- ``queue``: the training queue's hand-off between runs, and Ray's cost for one run against the
  local executor (:mod:`bench.queueing`);
- ``capacity``: drawing sessions speaking Streamlit's websocket protocol against one server, 1 to
  80 of them, idle and with a training running (:mod:`bench.capacity`);
- ``inside``: the layer view, a saliency map and the nearest neighbours for one drawing
  (:mod:`bench.inside`).

``--quick`` shrinks everything to a smoke run of a few minutes; its figures say that the
benchmark works, not how fast digitlab is. A table goes to stdout (``--json``: the JSON), the
JSON to ``--output``. The exit code is 1 when a part could not run; missed targets are reported
in the table and the JSON, not in the exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench.report import format_report

PARTS = ("training", "inference", "app", "browser", "load", "queue", "capacity", "labelling", "finetune",
         "inside")
FAMILY_NAMES = ("mlp", "lenet", "cnn", "cnn_fast")
SHIPPED_FAMILIES = ("mlp", "lenet", "cnn")  # what --quick trains when there is no model to time
FULL = {"repeats": 200, "baseline_repeats": 30, "browser_trials": 30, "load_sessions": 8, "load_seconds": 120.0,
        "load_train_size": 10_000, "load_idle_epochs": 3, "load_think_seconds": 1.0}
QUICK = {"repeats": 50, "baseline_repeats": 10, "browser_trials": 5, "load_sessions": 2, "load_seconds": 30.0,
         "load_train_size": 1_000, "load_idle_epochs": 2, "load_think_seconds": 1.0}
# (what, where in the results, the most it may be, unit) — from the issue "Prove it".
TARGETS = (
    ("our CNN (cnn_fast recipe) reaches 99.0 % test accuracy", ("training", "cnn_fast", "ours", "time_to_target"), 60,
     "s"),
    ("all models + preprocessing, p50", ("inference", "compare", "ours", "p50"), 20, "ms"),
    ("preprocessing a 4000×4000 picture, p50", ("inference", "preprocess_huge", "p50"), 2000, "ms"),
    ("preprocessing a paper photo, slowest scene, p50", ("inference", "preprocess_photos", "slowest_p50"), 50, "ms"),
    ("… read as the page reads (with the 'not a digit' tests), p50",
     ("inference", "compare_as_the_page_reads", "ours", "p50"), 20, "ms"),
    ("cold start to first prediction", ("app", "cold_start", "first_prediction_s"), 15, "s"),
    ("memory with all models loaded", ("app", "cold_start", "rss_all_models_mb"), 1536, "MB"),
    ("mouse-up → Prediction, p50", ("app", "mouse_up_to_prediction_ms", "p50"), 300, "ms"),
    ("load: errors", ("load", "errors"), 0, ""),
    ("load: mouse-up → Prediction, p95", ("load", "mouse_up_to_prediction_ms", "p95"), 1000, "ms"),
    ("load: epoch time vs idle", ("load", "training", "slowdown"), 2.0, "×"),
    ("queue: a run starts after the previous one ends", ("queue", "handoff", "max_start_after_previous_end_s"), 2.0,
     "s"),
    ("queue: one run on a local Ray head, extra wall time", ("queue", "ray_vs_local", "ray_extra_s"), 5.0, "s"),
    ("labelling a drawing, p50", ("labelling", "label", "p50"), 50, "ms"),
    ("fine-tuning cnn on 300 digits with replay", ("finetune", "fit_seconds"), 90, "s"),
    ("fine-tuning: held-out errors left (share)", ("finetune", "errors_left_share"), 0.5, ""),
    ("fine-tuning: MNIST drop", ("finetune", "mnist_drop_points"), 0.2, "points"),
    ("capacity: 40 drawing sessions, p95 (no training)", ("capacity", "curve", "40", "p95_ms"), 300, "ms"),
    ("capacity: 20 sessions with a training running, p95", ("capacity", "with_training", "p95_ms"), 500, "ms"),
    ("capacity: epoch time with 20 sessions vs idle", ("capacity", "with_training", "slowdown"), 1.5, "×"),
    ("look inside: layers + saliency + neighbours, slowest model p50", ("inside", "slowest_p50"), 60, "ms"),
)


@dataclass(frozen=True)
class BenchSettings:
    """What to measure and how much of it."""

    quick: bool
    parts: tuple[str, ...]
    families: tuple[str, ...]
    repeats: int
    baseline_repeats: int
    browser_trials: int
    load_sessions: int
    load_seconds: float
    load_train_size: int
    load_idle_epochs: int
    load_think_seconds: float  # a load session's pause to read each answer; 0 = back to back
    load_browser_nice: int = 0  # the browsers' CPU priority under load: 0 = the server's, 19 = lowest

    @classmethod
    def create(cls, *, quick: bool, parts: str, families: str = ",".join(FAMILY_NAMES),
               load: bool = False, think: float | None = None, browser_nice: int = 0) -> BenchSettings:
        """Settings from the command line's strings; raises ``ValueError`` for unknown names."""
        chosen = _names(parts, PARTS, "part") + (("load",) if load else ())
        sizes = {**(QUICK if quick else FULL), **({} if think is None else {"load_think_seconds": think})}
        if not 0 <= sizes["load_think_seconds"] <= 60:
            raise ValueError("the load sessions' think time must be 0–60 s")
        if not 0 <= browser_nice <= 19:
            raise ValueError("the browsers' nice value must be 0–19")
        if browser_nice and _autogroup() is not True:
            raise ValueError("lowering the browsers' priority needs Linux's sched_autogroup "
                             "(/proc/sys/kernel/sched_autogroup_enabled = 1)")
        return cls(quick, tuple(dict.fromkeys(chosen)), _names(families, FAMILY_NAMES, "family"), **sizes,
                   load_browser_nice=browser_nice)


def _names(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in (text or "").split(",") if name.strip())
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise ValueError(f"unknown {what}(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(allowed)}")
    return names


def run_bench(args: argparse.Namespace) -> int:
    """The ``bench`` sub-command: measure the chosen parts, print a table, write the JSON."""
    settings = BenchSettings.create(quick=args.quick, parts=args.parts, families=getattr(args, "families", None)
                                    or ",".join(FAMILY_NAMES), load=getattr(args, "load", False),
                                    think=getattr(args, "load_think", None),
                                    browser_nice=getattr(args, "load_browser_nice", 0))
    data_path = _data_path(args.data)
    results: dict[str, Any] = {"machine": machine_info(), "settings": asdict(settings)}
    with tempfile.TemporaryDirectory(prefix="digitlab-bench-") as scratch:
        if "training" in settings.parts:
            results["training"] = _guarded(_training, settings, data_path, scratch)
        models_dir = None
        if set(settings.parts) & {"inference", "app", "browser", "load", "capacity", "labelling", "finetune",
                                  "inside"}:
            models_dir = _guarded(bench_models_dir, args.models, settings, data_path, scratch)
        models_error = models_dir if isinstance(models_dir, dict) else None
        for part, measure in (("inference", _inference), ("app", _app), ("load", _load), ("inside", _inside)):
            wanted = part in settings.parts or (part == "app" and "browser" in settings.parts)
            if wanted:
                results[part] = models_error or _guarded(measure, models_dir, settings, data_path)
        if "queue" in settings.parts:
            from bench.queueing import measure_queue

            results["queue"] = _guarded(measure_queue, data_path, settings.quick)
        for part, measure in (("labelling", _labelling), ("finetune", _finetune)):
            if part in settings.parts:
                results[part] = models_error or _guarded(measure, models_dir, settings, data_path, scratch)
        if "capacity" in settings.parts:
            from bench.capacity import measure_capacity

            results["capacity"] = models_error or _guarded(measure_capacity, models_dir, data_path, settings.quick)
    results["targets"] = check_targets(results, settings.quick)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(json.dumps(results, indent=1) if args.json else format_report(results))
    print(f"bench: results written to {args.output}", file=sys.stderr)
    return 1 if any(_failed(results.get(part)) for part in PARTS) else 0


def _failed(part: Any) -> bool:
    """A part, or one of its runs (the training part's families), could not run."""
    if not isinstance(part, dict):
        return False
    return "error" in part or any(isinstance(value, dict) and "error" in value for value in part.values())


def _data_path(given: str | None) -> str | None:
    """The MNIST path the children should use: the argument, else ``$DIGITLAB_MNIST``."""
    from digitlab.data import ENV_VAR

    return given or os.environ.get(ENV_VAR) or None


def _guarded(function, *arguments) -> Any:
    """Run one part; an error becomes ``{"error": …}`` so the other parts still run."""
    try:
        return function(*arguments)
    except Exception as error:  # noqa: BLE001 - reported in the table and the JSON
        message = f"{type(error).__name__}: {error}"
        print(f"bench: {message}", file=sys.stderr)
        return {"error": message}


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def machine_info() -> dict[str, Any]:
    """The machine and software the figures belong to, and how busy the machine was at the start."""
    import psutil

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "load_average_1min": round(load, 2) if load is not None else None, "nice": os.nice(0),
            "sched_autogroup": _autogroup(), "python": platform.python_version(), "platform": platform.platform(),
            "packages": {name: _version(name) for name in ("tensorflow", "keras", "streamlit", "playwright")}}


def _autogroup() -> bool | None:
    """Whether Linux shares the CPU between sessions before processes (it changes load figures)."""
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        return None


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


# -- the parts ---------------------------------------------------------------------------------
def _training(settings: BenchSettings, data_path: str | None, scratch: str) -> dict[str, Any]:
    from bench.training import compare_family, family_specs, measure_run

    specs = family_specs(list(settings.families), quick=settings.quick, data_path=data_path,
                         save_to=str(Path(scratch) / "models") if settings.quick else None)
    runs, measured = {}, {}
    for spec in specs:  # a baseline two families share (the Keras example CNN) is trained once
        once = (spec.architecture, spec.way)
        if once not in measured:
            _progress(f"training {spec.architecture} ({spec.way} recipe)…")
            measured[once] = measure_run(spec)
        runs[(spec.family, spec.way)] = {**measured[once], "family": spec.family}
    results = {}
    for family in settings.families:
        ours, tutorial = runs[(family, "ours")], runs[(family, "tutorial")]
        if "error" in ours or "error" in tutorial:
            results[family] = {"error": ours.get("error") or tutorial.get("error"), "ours": ours, "tutorial": tutorial}
        else:
            results[family] = compare_family(ours, tutorial)
    return results


def bench_models_dir(models: Path | None, settings: BenchSettings, data_path: str | None, scratch: str) -> str:
    """The store to time: ``--models`` (or ``models/``); for ``--quick`` with no usable model,
    small models trained for the purpose (the training part's, when it ran)."""
    from digitlab.store import ModelStore

    store = ModelStore(models)
    if any(entry.usable for entry in store.list()):
        return str(store.root)
    if not settings.quick:
        raise ValueError(f"no usable model in {store.root}: train the shipped models first "
                         "(python -m digitlab train --arch cnn --ship …) or pass --models")
    quick_store = ModelStore(Path(scratch) / "models")
    if not any(entry.usable for entry in quick_store.list()):
        from bench.training import family_specs, measure_run

        specs = family_specs(list(SHIPPED_FAMILIES), quick=True, data_path=data_path, save_to=str(quick_store.root))
        for spec in specs:
            if spec.way == "ours":
                _progress(f"no models in {store.root}: training a quick {spec.architecture} to time…")
                measure_run(replace(spec, epochs=1))
    _progress(f"{store.root} has no usable model: timing quick models from {quick_store.root}")
    return str(quick_store.root)


def _timed_models(models_dir: str) -> dict[str, Any]:
    """The shipped models of the store if it has any usable, else every usable one, loaded."""
    from digitlab.store import ModelStore

    store = ModelStore(models_dir)
    usable = [entry for entry in store.list() if entry.usable]
    chosen = [entry for entry in usable if entry.shipped] or usable
    return {entry.name: store.load(entry.name) for entry in chosen}


def _inference(models_dir: str, settings: BenchSettings, data_path: str | None) -> dict[str, Any]:
    from bench.inference import measure_inference
    from digitlab.reading import store_options
    from digitlab.store import ModelStore

    _progress("timing inference…")
    models = _timed_models(models_dir)
    return {"models_dir": models_dir, **measure_inference(models, settings.repeats, settings.baseline_repeats,
                                                          store_options(ModelStore(models_dir), models))}


def _app(models_dir: str, settings: BenchSettings, data_path: str | None) -> dict[str, Any]:
    from bench.browser import measure_app

    trials = settings.browser_trials if "browser" in settings.parts else 0
    _progress(f"starting the app cold, then {trials} strokes in Chromium…")
    return {"models_dir": models_dir, **measure_app(models_dir, data_path, trials)}


def _load(models_dir: str, settings: BenchSettings, data_path: str | None) -> dict[str, Any]:
    from bench.load import measure_load

    _progress(f"load: idle training epochs, then {settings.load_sessions} sessions for {settings.load_seconds:.0f} s…")
    return measure_load(models_dir, data_path, sessions=settings.load_sessions, seconds=settings.load_seconds,
                        train_size=settings.load_train_size, idle_epoch_count=settings.load_idle_epochs,
                        think_seconds=settings.load_think_seconds, browser_nice=settings.load_browser_nice)


def _labelling(models_dir: str, settings: BenchSettings, data_path: str | None, scratch: str) -> dict[str, Any]:
    from bench.handwriting import measure_labelling

    _progress("timing labelling…")
    return measure_labelling(_timed_models(models_dir), settings.repeats, scratch)


def _finetune(models_dir: str, settings: BenchSettings, data_path: str | None, scratch: str) -> dict[str, Any]:
    from bench.handwriting import measure_finetune

    _progress("fine-tuning cnn on the synthetic continental writer…")
    return measure_finetune(models_dir, data_path, scratch, per_digit=3 if settings.quick else 30)


def _inside(models_dir: str, settings: BenchSettings, data_path: str | None) -> dict[str, Any]:
    from bench.inside import measure_inside
    from digitlab.data import load_mnist

    _progress("timing the Look-inside views…")
    return {"models_dir": models_dir, **measure_inside(_timed_models(models_dir), load_mnist(data_path),
                                                       settings.repeats)}


# -- targets and the report ----------------------------------------------------------------------
def lookup(results: dict[str, Any], path: tuple[str, ...]) -> Any:
    """``results[a][b]…`` or None when any step is missing."""
    value: Any = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def check_targets(results: dict[str, Any], quick: bool) -> list[dict[str, Any]]:
    """Each target with its measured value and ``met``: True, False, or None (not measured / quick)."""
    checked = []
    for what, path, limit, unit in TARGETS:
        if path[0] not in results:
            continue
        value = lookup(results, path)
        met = None if quick or value is None else value <= limit
        checked.append({"target": what, "value": value, "limit": limit, "unit": unit, "met": met})
    return checked
