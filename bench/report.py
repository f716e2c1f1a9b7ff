"""The benchmark's printed report: plain-text tables made from the results dictionary.

Pure functions of the JSON-ready results, so the report can be re-made from a saved ``bench.json``.
"""

from __future__ import annotations

from statistics import median
from typing import Any

from bench.handwriting import finetune_section, labelling_section


def format_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain-text table: columns as wide as their widest cell, numeric columns right-aligned."""
    cells = [[format_cell(value) for value in row] for row in rows]
    widths = [max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)]
    numeric = [bool(rows) and all(_is_number(row[i]) or row[i] is None for row in rows) for i in range(len(headers))]

    def line(values: list[str]) -> str:
        padded = (v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True))
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), line(["-" * width for width in widths]), *map(line, cells)])


def format_cell(value: Any) -> str:
    """``None`` as a dash, floats with one or two decimals, integers with thousands separators."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _percent(value: float | None) -> str | None:
    return None if value is None else f"{value * 100:.2f} %"


def _megabytes(size: int | None) -> str | None:
    return None if size is None else f"{size / 2**20:.2f} MB"


def training_section(training: dict[str, Any]) -> str:
    headers = ["family", "recipe", "test acc", "best", "UCI acc", "params", "file", "s/epoch", "samples/s",
               "→ target", "epochs"]
    rows, verdicts = [], []
    for family, result in training.items():
        for way in ("ours", "tutorial"):
            run = result.get(way) or {}
            if "error" in run or not run:
                rows.append([family, f"{way}: {run.get('architecture', '?')}", run.get("error", "did not run"),
                             *[None] * (len(headers) - 3)])
                continue
            reached = (f"{run['time_to_target']:.1f} s (ep {run['epochs_to_target']})"
                       if run.get("time_to_target") is not None else "not reached")
            rows.append([family, f"{way}: {run['architecture']}", _percent(run["test_accuracy"]),
                         _percent(run["best_test_accuracy"]), _percent(run.get("uci_accuracy")), run["parameters"],
                         _megabytes(run["file_bytes"]),
                         run["seconds_per_epoch"], run["samples_per_second"], reached, run["recipe"]["epochs"]])
        if result.get("speedup"):
            verdicts.append(f"  {family}: ours reaches {result['target'] * 100:.1f} % {result['speedup']}× as fast")
        elif "target" in result:
            verdicts.append(f"  {family}: no time-to-{result['target'] * 100:.1f} % ratio (not both reached it)")
    return "\n".join(["Training: our recipe against the tutorial's", format_table(headers, rows), *verdicts])


def inference_section(inference: dict[str, Any]) -> str:
    headers = ["one drawing", "p50 ms", "p95 ms", "model.predict p50", "p95", "× faster"]
    rows = [["preprocessing", inference["preprocess"]["p50"], inference["preprocess"]["p95"], None, None, None]]
    huge = inference.get("preprocess_huge")
    if huge:
        rows.append([f"preprocessing a {huge['size']}×{huge['size']} picture", huge["p50"], huge["p95"],
                     None, None, None])
    for scene, timing in inference.get("preprocess_photos", {}).get("scenes", {}).items():
        rows.append([f"preprocessing a paper photo: {scene}", timing["p50"], timing["p95"], None, None, None])
    for name, timing in inference["models"].items():
        rows.append([f"model {name}", timing["predictor"]["p50"], timing["predictor"]["p95"],
                     timing["predict"]["p50"], timing["predict"]["p95"], timing["ratio"]])
    compare = inference["compare"]
    rows.append([f"preprocessing + all {len(compare['models'])} models", compare["ours"]["p50"],
                 compare["ours"]["p95"], compare["predict"]["p50"], compare["predict"]["p95"], compare["ratio"]])
    as_read = inference.get("compare_as_the_page_reads")
    if as_read:
        rows.append([f"… with the page's 'not a digit' tests ({len(as_read['models_with_own_test'])} own)",
                     as_read["ours"]["p50"], as_read["ours"]["p95"], None, None, None])
    return "\n".join([f"Inference ({inference['drawing']})", format_table(headers, rows)])


def app_section(app: dict[str, Any]) -> str:
    cold = app["cold_start"]
    rows = [["spawn → server answers", cold["server_ready_s"], "s"],
            ["spawn → canvas ready", cold["canvas_ready_s"], "s"],
            ["spawn → first Prediction", cold["first_prediction_s"], "s"],
            ["memory, one model used", cold["rss_one_model_mb"], "MB"],
            ["memory, all models loaded", cold["rss_all_models_mb"], "MB"]]
    for key, label in (("mouse_up_to_prediction_ms", "mouse-up → Prediction"),
                       ("mouse_up_to_settled_ms", "mouse-up → page settled"),
                       ("compare_mode_prediction_ms", "Compare mode: mouse-up → Prediction"),
                       ("compare_mode_settled_ms", "Compare mode: mouse-up → settled")):
        timing = app.get(key) or {"n": 0}
        if timing["n"]:
            rows.append([f"{label} p50 / p95 (n={timing['n']})", f"{timing['p50']:.0f} / {timing['p95']:.0f}", "ms"])
    rows.append(["page errors", len(app["page_errors"]), ""])
    return "\n".join(["App (streamlit run, Chromium)", format_table(["measure", "value", "unit"], rows)])


def _median(values: list[float]) -> float | None:
    return round(median(values), 2) if values else None


def load_section(load: dict[str, Any]) -> str:
    timing, training = load["mouse_up_to_prediction_ms"], load["training"]
    rows = [["sessions × seconds", f"{load['sessions']} × {load['seconds']:.0f}"],
            ["reading time per answer", f"{load.get('think_seconds', 0):g} s"],
            ["browsers' nice (0 = the server's priority)", load.get("browser_nice", 0)],
            ["strokes answered", load["strokes"]], ["errors", load["errors"]],
            ["mouse-up → Prediction p50 / p95 ms",
             "—" if not timing["n"] else f"{timing['p50']:.0f} / {timing['p95']:.0f}"],
            [f"{training['architecture']} epoch s, idle (median)", _median(training["idle_epoch_s"])],
            ["same under load (median)", _median(training["loaded_epoch_s"])],
            ["slowdown", training["slowdown"]],
            ["training's cores busy, idle → under load",
             f"{training.get('idle_cores_used')} → {training.get('loaded_cores_used')}"],
            ["server memory MB", load["server_rss_mb"]]]
    cpu, per_answer = load.get("cpu_seconds"), load.get("cpu_ms_per_answer") or {}
    if cpu:  # where the window's CPU went: the browsers are the visitors' machines, here on ours
        rows += [[f"CPU s: {role.replace('_', ' ')}", cpu.get(role)]
                 for role in ("server", "training", "load_generator", "rest_of_machine", "idle")]
        rows += [["CPU s available (cores × window)", cpu["available"]],
                 ["server CPU ms per answer", per_answer.get("server")],
                 ["browsers' CPU ms per answer", per_answer.get("load_generator")]]
    text = [f"Load ({load['sessions']} Chromium sessions while {training['architecture']} trains)",
            format_table(["measure", "value"], rows)]
    text += [f"  error: {error}" for error in load["error_samples"]]
    return "\n".join(text)


def targets_section(targets: list[dict[str, Any]]) -> str:
    verdict = {True: "met", False: "MISSED", None: "—"}
    rows = [[t["target"], t["value"], f"≤ {format_cell(t['limit'])} {t['unit']}".rstrip(), verdict[t["met"]]]
            for t in targets]
    return "\n".join(["Targets", format_table(["target", "measured", "limit", "verdict"], rows)])


def queue_section(queue: dict[str, Any]) -> str:
    """The training queue: hand-off between runs, and Ray against the local executor."""
    handoff = queue.get("handoff", {})
    ray = queue.get("ray_vs_local", {})
    rows = [["next run starts after the previous ends (s)", handoff.get("start_after_previous_end_s")],
            ["its first progress after its start (s): the child loading TensorFlow",
             handoff.get("first_progress_after_start_s")]]
    if "skipped" in ray:
        rows.append(["one run on Ray vs local", f"skipped: {ray['skipped']}"])
    else:
        rows += [["one run, local executor: submitted → finished (s)", ray.get("local_wall_s")],
                 ["the same on a local Ray head (s)", ray.get("ray_wall_s")],
                 ["Ray's extra, difference of the medians (s)", ray.get("ray_extra_s")]]
    return "The training queue\n" + format_table(["measure", "value"], rows)


def capacity_section(capacity: dict[str, Any]) -> str:
    """Drawing sessions against one server: the curve, then the same with a training running."""
    rows = [[level["sessions"], level["answers"], level["errors"], level["p50_ms"], level["p95_ms"],
             level["server_cpu_ms_per_answer"]] for level in capacity.get("curve", {}).values()]
    training = capacity.get("with_training", {})
    if training:
        rows.append([f"{training['sessions']} + training", training["answers"], training["errors"],
                     training["p50_ms"], training["p95_ms"], training["server_cpu_ms_per_answer"]])
    table = format_table(["sessions", "answers", "errors", "p50 ms", "p95 ms", "server CPU ms/answer"], rows)
    lines = [f"Capacity (a drawing every {capacity.get('interval_s')} s per session)", table,
             f"max sessions with p95 ≤ 300 ms: {capacity.get('max_sessions_p95_300ms')}"]
    if training:
        lines.append(f"training ({training['training']}): epoch {training['idle_epoch_s']} s idle, "
                     f"{training['loaded_epoch_s']} s with the sessions — {training['slowdown']}×")
    return "\n".join(lines)


def _inside_section(inside: dict[str, Any]) -> str:
    from bench.inside import inside_section

    return inside_section(inside)


SECTIONS = (("training", training_section), ("inference", inference_section), ("app", app_section),
            ("load", load_section), ("queue", queue_section), ("capacity", capacity_section),
            ("labelling", labelling_section), ("finetune", finetune_section), ("inside", _inside_section))


def format_report(results: dict[str, Any]) -> str:
    """The whole report: the machine, one section per part that ran, then the targets."""
    machine = results.get("machine", {})
    settings = results.get("settings", {})
    quick = " --quick (a smoke run: the figures are not the real ones)" if settings.get("quick") else ""
    parts = [f"python -m bench{quick} — {machine.get('cpus')} CPUs, "
             f"load average {machine.get('load_average_1min')} at the start"]
    if machine.get("cpus") and (machine.get("load_average_1min") or 0) > 0.5 * machine["cpus"]:
        parts.append("WARNING: the machine was busy when the benchmark started; timings are pessimistic.")
    for key, section in SECTIONS:
        if key in results:
            part = results[key]
            parts.append(f"{key}: could not run — {part['error']}" if "error" in part else section(part))
    if results.get("targets"):
        parts.append(targets_section(results["targets"]))
    return "\n\n".join(parts)
