"""The commands about stored models: ``evaluate``, ``calibrate``, ``predict``, ``probe``, ``report``,
``list``, ``export`` and ``fit-novelty``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from digitlab.cli.digits import digits_db
from digitlab.cli.output import EXIT_ERROR, emit, reason
from digitlab.store import ModelStore

if TYPE_CHECKING:
    from digitlab.config import TrainConfig

EXPORT_CHECK_DIGITS = 1000  # MNIST test digits a TFLite file must answer like the model


WRITER_PREFIX = "writer:"


def cmd_evaluate(args: argparse.Namespace) -> int:
    from digitlab.evaluation import evaluate, evaluate_probabilities
    from digitlab.inference import Averaged, Predictor, model_names

    store = ModelStore(args.models)
    names = model_names(args.name)
    averaged = len(names) > 1
    predictor = Averaged.from_store(store, names) if averaged else Predictor(store.load(args.name))
    if args.on.startswith(WRITER_PREFIX):
        return _evaluate_on_writer(args, predictor)
    summary = None  # the set's own findings from the evaluation: (JSON fields, lines)
    if args.on == "uci":
        from digitlab.other_handwriting import load_uci_digits, squashed_inputs

        digits = load_uci_digits()
        images, labels = digits.images, digits.labels
        naive = evaluate(predictor, squashed_inputs(digits), digits.labels)
        title = f"{args.name} on {digits.name}, {len(digits.labels):,} digits by other writers"
        extra = {"dataset": "uci", "squashed_accuracy": naive.accuracy}
        footer = [f"squashed to 28×28 without the preprocessing: {naive.accuracy * 100:.2f} %"]
    elif args.on in ("styles", "heavy", "heavy-pad"):
        from digitlab.hard_styles import load_hard_styles, load_heavy_pen_styles

        digits = load_hard_styles() if args.on == "styles" else \
            load_heavy_pen_styles(as_the_pad_reads=args.on == "heavy-pad")
        images, labels = digits.images, digits.labels
        title = f"{args.name} on {digits.name}, {len(digits.labels):,} pictures"
        extra, footer, summary = {"dataset": args.on}, [], _styles_summary
    elif args.on == "photos":
        from digitlab.data import load_mnist
        from digitlab.paper_photos import load_paper_photos

        data = load_mnist(args.data)
        digits = load_paper_photos(data.x_test, data.y_test)
        images, labels = digits.images, digits.labels
        title = f"{args.name} on {digits.name}, {len(digits.labels):,} photos"
        extra, footer, summary = {"dataset": "photos"}, [], _photos_summary
    else:
        from digitlab.data import load_mnist

        data = load_mnist(args.data)
        images, labels = data.x_test, data.y_test
        title, extra, footer = f"{args.name} on the MNIST test set", {"dataset": "mnist"}, []
    probabilities = predictor.probabilities(images)
    result = evaluate_probabilities(probabilities, labels)
    if summary is not None:
        fields, footer = summary(result)
        extra = {**extra, **fields}
    # An average is of calibrated answers already: it has no card, and no temperature of its own.
    calibration = {} if averaged else _calibration_fields(store.read_card(args.name), probabilities, labels)
    payload = {**{key: value for key, value in result.to_dict().items() if key != "mistakes"}, **extra,
               **calibration}
    lines = [title, f"accuracy {result.accuracy * 100:.2f} %  loss {result.loss:.4f}  "
                    f"correct {result.correct}  incorrect {result.incorrect}",
             *([] if averaged else [_calibration_line(calibration)]), "digit  precision  recall"]
    rows = zip(result.precision, result.recall, strict=True)
    lines += [f"  {digit}     {precision:.4f}    {recall:.4f}" for digit, (precision, recall) in enumerate(rows)]
    emit(args, payload, "\n".join(lines + footer))
    return 0


def _styles_summary(result) -> tuple[dict, list[str]]:
    """The hard-styles set's (or its heavy-pen twin's) most misread styles."""
    from dataclasses import asdict

    from digitlab.hard_styles import misreads_by_style

    misreads = misreads_by_style(result)
    footer = ["most misread styles:" if misreads else "no style misread"]
    footer += [f"  {item.style} → {item.read_as}: {item.count} of {item.of}" for item in misreads[:8]]
    return {"misreads_by_style": [asdict(item) for item in misreads]}, footer


def _photos_summary(result) -> tuple[dict, list[str]]:
    """The paper photos read right, scene by scene."""
    from dataclasses import asdict

    from digitlab.paper_photos import scene_scores

    scenes = scene_scores(result)
    footer = ["by scene: " + ", ".join(f"{item.scene} {item.correct}/{item.of}" for item in scenes)]
    return {"by_scene": [asdict(item) for item in scenes]}, footer


def _evaluate_on_writer(args: argparse.Namespace, predictor) -> int:
    """``evaluate NAME --on writer:WRITER``: the model on one writer's labelled digits."""
    from digitlab.writer_scores import load_writer_digits, score_writer

    digits = load_writer_digits(digits_db(args), args.on[len(WRITER_PREFIX):])
    scores = score_writer({args.name: predictor}, digits)
    result = scores.evaluations[args.name]
    payload = {"dataset": args.on, "writer": digits.writer, "digits": len(digits),
               "accuracy": result.accuracy, "loss": result.loss, "correct": result.correct,
               "incorrect": result.incorrect, "per_digit": scores.per_digit[args.name], "counts": scores.counts,
               "misread": [{"id": item.digit.id, "label": item.digit.label, "said": item.said[args.name]}
                           for item in scores.misread]}
    lines = [f"{args.name} on {digits.writer}'s {len(digits)} labelled digits",
             f"accuracy {result.accuracy * 100:.2f} %  correct {result.correct}  incorrect {result.incorrect}",
             "digit  count  accuracy"]
    for label, (count, accuracy) in enumerate(zip(scores.counts, scores.per_digit[args.name], strict=True)):
        lines.append(f"  {label}    {count:4d}   " + ("—" if accuracy is None else f"{accuracy * 100:6.2f} %"))
    lines += [f"misread: #{item.digit.id} a {item.digit.label} read as {item.said[args.name]}"
              for item in scores.misread]
    emit(args, payload, "\n".join(lines))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``export NAME --format keras|tflite --output FILE``; a TFLite file is checked on test digits first."""
    from digitlab.export import export_model

    images, source = (None, None) if args.format == "keras" else _export_check_digits(args)
    report = export_model(ModelStore(args.models), args.name, args.format, args.output, images)
    checked = (f"; checked on {report.checked:,} {source}: {report.agreeing:,} same answers as the Keras model, "
               f"largest probability difference {report.max_difference:.1e}") if report.checked else ""
    emit(args, {**report.__dict__, "checked_on": source},
          f"wrote {report.path} ({report.bytes / 2**20:.1f} MB, {report.format}){checked}")
    return 0


def _export_check_digits(args: argparse.Namespace):
    """The first MNIST test digits when MNIST is found, else the UCI digits."""
    from digitlab.data import DataNotFoundError, load_mnist, to_float

    try:
        data = load_mnist(args.data, allow_download=False)
        return to_float(data.x_test[:EXPORT_CHECK_DIGITS]), "MNIST test digits"
    except DataNotFoundError:
        from digitlab.other_handwriting import load_uci_digits

        return load_uci_digits().images, "UCI digits"


def _calibration_fields(card: dict, probabilities, labels) -> dict:
    """ECE of these answers raw and with the card's temperature (1 when it has none)."""
    from digitlab.calibration import apply_temperature, expected_calibration_error
    from digitlab.card import RunCard

    calibration = RunCard.from_dict(card).calibration
    temperature = calibration.temperature if calibration else 1.0
    return {"temperature": temperature, "temperature_fitted": calibration is not None,
            "ece": round(expected_calibration_error(probabilities, labels), 6),
            "ece_calibrated": round(expected_calibration_error(apply_temperature(probabilities, temperature),
                                                               labels), 6)}


def _calibration_line(fields: dict) -> str:
    if not fields["temperature_fitted"]:
        return (f"ECE {fields['ece'] * 100:.2f} % (no temperature fitted yet: "
                "run `digitlab calibrate NAME`)")
    return (f"ECE {fields['ece'] * 100:.2f} % raw, {fields['ece_calibrated'] * 100:.2f} % at temperature "
            f"{fields['temperature']:.3f}")


def cmd_calibrate(args: argparse.Namespace) -> int:
    from digitlab.data import load_mnist
    from digitlab.runs import calibrate_stored

    store = ModelStore(args.models)
    data = load_mnist(args.data)
    summaries, lines = [], []
    for name in args.names:
        calibration = calibrate_stored(store, name, data)["calibration"]
        sets = {key: {"ece_before": item["ece_before"], "ece_after": item["ece_after"]}
                for key, item in calibration["sets"].items()}
        summaries.append({"name": name, "temperature": calibration["temperature"],
                          "not_sure_below": calibration["not_sure_below"], **sets})
        lines.append(f"{name}: temperature {calibration['temperature']:.3f}, validation NLL "
                     f"{calibration['validation_nll_before']:.4f} → {calibration['validation_nll_after']:.4f}; "
                     + "; ".join(f"ECE on {key} {item['ece_before'] * 100:.2f} % → {item['ece_after'] * 100:.2f} %"
                                 for key, item in sets.items())
                     + f"; not sure at or under {calibration['not_sure_below'] * 100:.1f} %")
    emit(args, summaries, "\n".join(lines))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from digitlab.inference import Predictor, model_names
    from digitlab.reading import averaged_reading, read_picture, store_options

    store = ModelStore(args.models)
    names = model_names(args.model)
    models = {name: store.load(name) for name in names}
    predictors = {name: Predictor(model) for name, model in models.items()}
    options = store_options(store, models)
    results, lines, failed = [], [], False
    for path in args.images:
        try:
            read = read_picture(Path(path).read_bytes(), predictors, **options)
        except (OSError, ValueError) as error:
            message = reason(error)
            results.append({"image": path, "error": message})
            lines.append(f"{path}: error: {message}")
            failed = True
            continue
        if read.model_input is None:
            results.append({"image": path, "digit": None, "message": read.message})
            lines.append(f"{path}: no digit ({read.message})")
            continue
        reading = read.readings[names[0]] if len(names) == 1 else averaged_reading(read.readings, args.model)
        probabilities = reading.probabilities
        if reading.digit is None:
            results.append({"image": path, "digit": None, "reason": reading.reason,
                            "closest_digit": reading.top_digit, "confidence": round(reading.confidence, 4),
                            "probabilities": [round(float(p), 4) for p in probabilities]})
            lines.append(f"{path}: not a digit ({reading.reason}); closest {reading.top_digit}")
            continue
        results.append({"image": path, "digit": reading.digit, "confidence": round(reading.confidence, 4),
                        "sure": reading.sure, "probabilities": [round(float(p), 4) for p in probabilities]})
        if len(names) > 1:  # what each model said, beside their average
            results[-1]["by_model"] = {name: read.readings[name].digit for name in names}
        lines.append(f"{path}: {reading.digit}  ({reading.confidence * 100:.1f} %"
                     + ("" if reading.sure else ", not sure") + ")  "
                     + " ".join(f"{d}:{p:.2f}" for d, p in enumerate(probabilities)))
        if read.prepared.advice:
            results[-1]["advice"] = read.prepared.advice
            lines.append(f"  note: {read.prepared.advice}")
    emit(args, results, "\n".join(lines))
    return EXIT_ERROR if failed else 0


def cmd_fit_novelty(args: argparse.Namespace) -> int:
    from digitlab import feature_novelty
    from digitlab.data import load_mnist
    from digitlab.nondigits import generate
    from digitlab.novelty import default_path, fit_and_measure
    from digitlab.other_handwriting import load_uci_digits
    from digitlab.preprocess import preprocess

    store = ModelStore(args.models)
    data, uci = load_mnist(args.data), load_uci_digits()
    detector, report = fit_and_measure(data, uci, args.nondigits, args.seed)
    path = detector.save(default_path(store.root))
    lines = [f"saved {path}", "the store's pixel test:", *_novelty_lines(report.false_alarms, report.detection,
                                                                         report.detection_by_kind, report.nondigits)]
    drawings = generate(args.nondigits, args.seed)
    inputs = [preprocess(drawing.picture).image for drawing in drawings]
    models = []
    for entry in store.list():
        if not entry.usable or (args.model and entry.name not in args.model):
            continue
        stats, model_report = feature_novelty.fit_and_measure(
            entry.name, store.load(entry.name), data, uci, detector, inputs, [d.kind for d in drawings],
            config=_card_config(entry.card))
        saved = stats.save(feature_novelty.stats_path(store.root, entry.card["model_file"]))
        models.append({**model_report.to_dict(), "path": str(saved)})
        lines += [f"{entry.name}'s own test ({model_report.dimensions} features), saved {saved}; "
                  f"alone it catches {model_report.detection * 100:.1f} % of the non-digits; with the pixel test:",
                  *_novelty_lines(model_report.false_alarms_with_pixels, model_report.detection_with_pixels,
                                  model_report.detection_by_kind, args.nondigits)]
    emit(args, {**report.to_dict(), "path": str(path), "models": models}, "\n".join(lines))
    return 0


def _card_config(card: dict) -> TrainConfig | None:
    """The training settings a card records, or None for a card from before they were recorded."""
    from digitlab.config import TrainConfig

    try:
        return TrainConfig(**card["config"])
    except (KeyError, TypeError):
        return None


def _novelty_lines(false_alarms: dict[str, float], detection: float, by_kind: dict[str, float],
                   count: int) -> list[str]:
    alarms = ", ".join(f"{name} {share * 100:.2f} %" for name, share in false_alarms.items())
    kinds = ", ".join(f"{kind} {share * 100:.1f} %" for kind, share in by_kind.items())
    return [f"  false alarms on real digits: {alarms}",
            f"  non-digits caught: {detection * 100:.1f} % of {count} ({kinds})"]


def cmd_probe(args: argparse.Namespace) -> int:
    from digitlab.inference import Predictor
    from digitlab.preprocess import preprocess
    from digitlab.probe import probe

    store = ModelStore(args.models)
    names = args.model or [entry.name for entry in store.list() if entry.usable]
    if not names:
        raise ValueError(f"no usable model in {store.root}")
    prepared = preprocess(Path(args.image).read_bytes())
    if prepared.image is None:
        raise ValueError(f"{args.image}: no digit to probe ({prepared.message})")
    results = probe(prepared.image, {name: Predictor(store.load(name)) for name in names}, args.digit)
    lines = []
    for result in results:
        lines.append(f"{result.name} ({result.unit}): " + "  ".join(f"{value:g}" for value in result.values))
        lines += [f"  {name} P({result.digit[name]}): " + "  ".join(f"{p:.2f}" for p in result.probability[name])
                  for name in names]
    emit(args, {"image": args.image, "sweeps": [result.to_dict() for result in results]}, "\n".join(lines))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from digitlab.card import RunCard
    from digitlab.data import DataNotFoundError, load_mnist
    from digitlab.report_sheet import write_sheet

    card = RunCard.from_dict(ModelStore(args.models).read_card(args.name))
    try:
        test_images = load_mnist(args.data, allow_download=False).x_test
    except DataNotFoundError:
        test_images = None
        print("digitlab report: MNIST not found, so the sheet shows no misread pictures "
              "(set DIGITLAB_MNIST or pass --data)", file=sys.stderr)
    path = write_sheet(card, args.output, test_images)
    emit(args, {"name": args.name, "output": str(path)}, f"wrote {path}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from digitlab.store import StoreError

    store = ModelStore(args.models)
    if not store.root.is_dir():  # a file or a typo is not an empty store
        what = "is a file, not a folder" if store.root.exists() else "does not exist"
        raise StoreError(f"the model store {store.root} {what}; point --models or $DIGITLAB_MODELS at a folder")
    entries = store.list()
    payload = [{"name": e.name, "usable": e.usable, "error": e.error, "shipped": e.shipped,
                "architecture": e.run.architecture if e.card else None, "test_accuracy": e.run.test_accuracy,
                "parameters": e.run.parameters} for e in entries]
    text = "\n".join(e.headline for e in entries) or "the store is empty"
    emit(args, payload, text)
    return 0


def test_set(text: str) -> str:
    """``mnist``, ``uci``, ``styles``, ``heavy``, ``heavy-pad``, ``photos`` or ``writer:NAME``
    (argparse type of ``evaluate --on``)."""
    writer = text.startswith(WRITER_PREFIX) and text[len(WRITER_PREFIX):].strip()
    if text in ("mnist", "uci", "styles", "heavy", "heavy-pad", "photos") or writer:
        return text
    raise argparse.ArgumentTypeError(
        f"unknown test set {text!r}: use mnist, uci, styles, heavy, heavy-pad, photos or writer:NAME")
