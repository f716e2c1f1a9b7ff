"""The bad-input corpus: every odd picture, upload, model file, setting and name we could think of.

Each case has one asserted outcome — a digit, "no digit" with a message, or a refusal with a
message — and goes through the public functions, the command line and, where it applies, the
pages (AppTest). Whatever the input: a clear message, no traceback, nothing in the store changed.
"""

from __future__ import annotations

import functools
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pytest
from app_support import app_against, pad_message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageDraw

from digitlab.architectures import Architecture
from digitlab.cli import main
from digitlab.images import ImageError, decode_image
from digitlab.jobs.queue import is_queue_file
from digitlab.preprocess import Preprocessed, preprocess
from digitlab.runs import check_run, train_and_store
from digitlab.store import ModelStore, StoreError
from digitlab.training import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent
CANVAS = 280
SEVEN = ((80, 60), (200, 60), (120, 230))
DIGIT, NO_DIGIT, REFUSED = "digit", "no digit", "refused"
UPLOAD = ":material/upload: Upload"
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # the bomb cases
CPU_SECONDS = 3.0  # far more than any case needs (milliseconds); a decoded bomb would need minutes


@dataclass(frozen=True)
class Case:
    """One bad input and what must come of it (``expect`` is matched against the message)."""

    name: str
    make: object  # () -> numpy array or file bytes
    outcome: str
    expect: str = ""

    def __str__(self) -> str:
        return self.name


# -- pictures ---------------------------------------------------------------------------------------
def canvas(strokes=(SEVEN,), width: int = 22, ink=(255, 255, 255, 255), background=(0, 0, 0, 255),
           size: int = CANVAS) -> np.ndarray:
    """An RGBA canvas like the Draw page's (white ink, opaque black background by default)."""
    picture = Image.new("RGBA", (size, size), background)
    pen = ImageDraw.Draw(picture)
    for stroke in strokes:
        pen.line(stroke, fill=ink, width=width, joint="curve")
    return np.array(picture)


def moved(stroke, scale: float, dx: float, dy: float):
    return tuple((x * scale + dx, y * scale + dy) for x, y in stroke)


def single_dot() -> np.ndarray:
    picture = Image.fromarray(canvas(()))
    ImageDraw.Draw(picture).ellipse((130, 130, 152, 152), fill=(255, 255, 255, 255))
    return np.asarray(picture)


def tiny_scribble() -> np.ndarray:
    picture = canvas(())
    picture[140:142, 140:142, :3] = 255
    return picture


def paper_photo() -> np.ndarray:
    """Dark ink on grey, noisy paper, in RGB: what a phone photo of a written digit looks like."""
    gray = Image.new("L", (240, 300), 190)
    ImageDraw.Draw(gray).line(moved(SEVEN, 0.9, 10, 20), fill=50, width=14, joint="curve")
    noise = np.random.default_rng(0).normal(0, 8, (300, 240))
    pixels = np.clip(np.asarray(gray, np.float64) + noise, 0, 255).astype(np.uint8)
    return np.stack([pixels] * 3, axis=-1)


def filled(shape: str, box=(40, 40, 240, 240)) -> np.ndarray:
    """A pad with a large filled disc or square (white on black)."""
    picture = Image.fromarray(canvas(()))
    pen = ImageDraw.Draw(picture)
    (pen.ellipse if shape == "disc" else pen.rectangle)(box, fill=(255, 255, 255, 255))
    return np.asarray(picture)


def scribbled_square() -> np.ndarray:
    """A square coloured in with overlapping back-and-forth strokes: solid ink."""
    return canvas([((50, y), (230, y)) for y in range(50, 231, 18)])


def forged(shape, dtype=np.uint8, fill=0):
    return lambda: np.full(shape, fill, dtype=dtype)


def noise(side: int, seed: int = 0) -> np.ndarray:
    """Random grey pixels: a photo of grain, static or a texture, with no digit in it."""
    return np.random.default_rng(seed).integers(0, 256, (side, side), dtype=np.uint8)


def dotted_zero(dots: int = 12) -> np.ndarray:
    """A 0 tapped as separate dots round an oval, as a finger may draw it on a phone."""
    pad = Image.new("L", (CANVAS, CANVAS), 0)
    pen = ImageDraw.Draw(pad)
    for angle in np.linspace(0, 2 * np.pi, dots, endpoint=False):
        x, y = 140 + 70 * np.cos(angle), 140 + 100 * np.sin(angle)
        pen.ellipse([x - 9, y - 9, x + 9, y + 9], fill=255)
    return np.asarray(pad)


def salted_seven() -> np.ndarray:
    """A drawn 7 on a pad sprinkled with 2 % white specks (a dirty scan)."""
    picture = canvas()[..., 0].copy()
    specks = np.random.default_rng(3).random(picture.shape) < 0.02
    picture[specks] = 255
    return picture


def oversized_canvas() -> np.ndarray:
    return canvas(strokes=(moved(SEVEN, 12, 200, 200),), width=200, size=4000)


PICTURES = [
    Case("untouched canvas (opaque black)", lambda: canvas(()), NO_DIGIT, "blank"),
    Case("cleared canvas (transparent)", forged((CANVAS, CANVAS, 4)), NO_DIGIT, "blank"),
    Case("all white", forged((CANVAS, CANVAS, 3), fill=255), NO_DIGIT, "one colour all over"),
    Case("white on white", lambda: canvas(background=(255, 255, 255, 255)), NO_DIGIT, "one colour all over"),
    Case("single dot", single_dot, NO_DIGIT, "single dot"),
    Case("pad filled white", lambda: canvas((), background=(255, 255, 255, 255)), NO_DIGIT, "one colour all over"),
    Case("large filled disc", lambda: filled("disc"), NO_DIGIT, "filled shape"),
    Case("filled square", lambda: filled("square"), NO_DIGIT, "filled shape"),
    Case("scribbled-in square", scribbled_square, NO_DIGIT, "filled shape"),
    Case("tiny scribble", tiny_scribble, NO_DIGIT, "too little ink"),
    Case("random noise, 100 px", lambda: noise(100), NO_DIGIT, "noise or grain"),
    Case("random noise, 280 px", lambda: noise(280, 1), NO_DIGIT, "noise or grain"),
    Case("random noise, 1000 px", lambda: noise(1000, 2), NO_DIGIT, "noise or grain"),
    Case("a 0 tapped as 12 dots", dotted_zero, DIGIT),
    Case("a 7 on a pad sprinkled with specks", salted_seven, DIGIT),
    Case("thin 1-px stroke", lambda: canvas(width=1), DIGIT),
    Case("off-centre digit", lambda: canvas((moved(SEVEN, 0.4, -25, -20),), width=10), DIGIT),
    Case("tiny digit", lambda: canvas((moved(SEVEN, 0.06, 130, 130),), width=2), DIGIT),
    Case("huge digit, top to bottom", lambda: canvas((moved(SEVEN, 1.59, -60, -90),), width=40), DIGIT),
    Case("black-on-white photo", paper_photo, DIGIT),
    Case("forged payload: 5 channels", forged((CANVAS, CANVAS, 5)), REFUSED, "channels"),
    Case("forged payload: flat", forged((CANVAS * CANVAS * 4,)), REFUSED, "dimensions"),
    Case("forged payload: 4-D", forged((1, CANVAS, CANVAS, 4)), REFUSED, "dimensions"),
    Case("forged payload: no rows", forged((0, CANVAS, 4)), REFUSED, "empty"),
    Case("forged payload: NaN", forged((CANVAS, CANVAS), np.float32, np.nan), REFUSED, "NaN"),
    Case("forged payload: infinite", forged((CANVAS, CANVAS), np.float64, np.inf), REFUSED, "infinite"),
    Case("forged payload: floats 0..255", forged((CANVAS, CANVAS), np.float32, 255.0), REFUSED, "[0, 1]"),
    Case("forged payload: negative ints", forged((CANVAS, CANVAS), np.int64, -7), REFUSED, "0..255"),
    Case("forged payload: objects", forged((4, 4), object, None), REFUSED, "unsupported pixel type"),
    Case("forged payload: complex", forged((4, 4), np.complex64, 1j), REFUSED, "unsupported pixel type"),
    Case("forged payload: 4000×4000 canvas", oversized_canvas, DIGIT),
]


# -- uploads (file bytes) -------------------------------------------------------------------------
def encode(image: Image.Image, image_format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def ink_seven(mode: str, size=(200, 200), paper=255, ink=0) -> Image.Image:
    """A 7 in dark ink on light paper, in any PIL drawing mode."""
    picture = Image.new(mode, size, paper)
    ImageDraw.Draw(picture).line(moved(SEVEN, 0.6, 20, 20), fill=ink, width=14, joint="curve")
    return picture


def exif_rotated_jpeg() -> bytes:
    """A horizontal bar, stored sideways: upright (EXIF orientation 6) it is a vertical stroke."""
    picture = Image.new("L", (200, 120), 255)
    ImageDraw.Draw(picture).line(((30, 60), (170, 60)), fill=0, width=14)
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(picture, "JPEG", exif=exif.tobytes())


def palette_png_with_transparency() -> bytes:
    picture = Image.new("P", (200, 200), 0)
    picture.putpalette([255, 255, 255, 0, 0, 0] + [0] * (254 * 3))
    ImageDraw.Draw(picture).line(moved(SEVEN, 0.6, 20, 20), fill=1, width=14, joint="curve")
    return encode(picture, transparency=0)


def sixteen_bit_png() -> bytes:
    pixels = np.asarray(ink_seven("L", paper=0, ink=255), np.uint16) * 160  # ink at 40,800 of 65,535
    return encode(Image.fromarray(pixels))


def la_png() -> bytes:
    picture = Image.new("LA", (200, 200), (0, 0))
    ImageDraw.Draw(picture).line(moved(SEVEN, 0.6, 20, 20), fill=(255, 255), width=14, joint="curve")
    return encode(picture)


def animated(image_format: str) -> bytes:
    frames = [ink_seven("L"), Image.new("L", (200, 200), 255)]
    return encode(frames[0], image_format, save_all=True, append_images=frames[1:])


def truncated_png() -> bytes:
    data = encode(Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64), np.uint8)))
    return data[: len(data) // 2]


@functools.cache
def fifty_megabytes() -> bytes:
    return encode(Image.new("L", (8, 8)))[:16] + bytes(50 * 2**20)


UPLOADS = [
    Case("JPEG with EXIF rotation", exif_rotated_jpeg, DIGIT),
    Case("palette PNG with transparency", palette_png_with_transparency, DIGIT),
    Case("16-bit PNG", sixteen_bit_png, DIGIT),
    Case("CMYK JPEG", lambda: encode(ink_seven("CMYK", paper=(0, 0, 0, 0), ink=(0, 0, 0, 255)), "JPEG"), DIGIT),
    Case("LA PNG (gray + alpha)", la_png, DIGIT),
    Case("animated PNG", lambda: animated("PNG"), DIGIT),
    Case("animated GIF", lambda: animated("GIF"), REFUSED, "not a PNG or JPEG"),
    Case("12 KB PNG declaring 10000×10000", lambda: encode(Image.new("1", (10_000, 10_000))), REFUSED,
         "10000×10000 pixels"),
    Case("50 MB upload", fifty_megabytes, REFUSED, "50.0 MiB"),
    Case("non-image named .png", lambda: b"<html><body>not a picture</body></html>", REFUSED, "not a PNG or JPEG"),
    Case("truncated PNG", truncated_png, REFUSED, "truncated or corrupt"),
    Case("empty file", lambda: b"", REFUSED, "empty file"),
    Case("4096×1 PNG", lambda: encode(Image.new("L", (4096, 1), 255)), REFUSED, "too thin to hold a digit"),
    Case("1200×1 PNG", lambda: encode(Image.new("L", (1200, 1), 255)), REFUSED, "too thin to hold a digit"),
    Case("2000×3 PNG", lambda: encode(Image.new("L", (2000, 3), 255)), REFUSED, "too thin to hold a digit"),
    Case("1×900 JPEG", lambda: encode(Image.new("L", (1, 900), 255), "JPEG"), REFUSED, "too thin to hold a digit"),
]


def check_outcome(case: Case, run) -> Preprocessed | None:
    """Run ``run()`` and assert the case's outcome; returns the result for further checks."""
    if case.outcome == REFUSED:
        with pytest.raises(ValueError) as raised:
            run()
        assert case.expect in str(raised.value)
        return None
    result = run()
    if case.outcome == NO_DIGIT:
        assert result.image is None and case.expect in result.message
        return result
    image = result.image
    assert image is not None, result.message
    assert image.shape == (28, 28) and image.dtype == np.float32 and np.isfinite(image).all()
    assert image.min() >= 0.0 and image.max() == pytest.approx(1.0)
    rows, cols = np.nonzero(image > 0.1)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 in range(17, 23)  # the longer side is ~20 px
    weights = image / image.sum()
    centre = (weights.sum(axis=1) @ np.arange(28), weights.sum(axis=0) @ np.arange(28))
    assert np.allclose(centre, 14.0, atol=1.0)  # MNIST's centre of mass
    return result


@pytest.mark.parametrize("case", PICTURES, ids=str)
def test_picture_corpus_through_preprocess(case: Case) -> None:
    picture = case.make()
    started = time.process_time()  # CPU time: a busy machine does not make it fail
    check_outcome(case, lambda: preprocess(picture))
    assert time.process_time() - started < CPU_SECONDS


def test_thin_stroke_is_widened_and_photo_is_inverted() -> None:
    assert "thickened" in preprocess(canvas(width=1)).steps
    assert preprocess(paper_photo()).inverted


@pytest.mark.parametrize("case", UPLOADS, ids=str)
def test_upload_corpus_through_preprocess(case: Case) -> None:
    data = case.make()
    started = time.process_time()
    result = check_outcome(case, lambda: preprocess(data))
    assert time.process_time() - started < CPU_SECONDS  # a decompression bomb is not decompressed
    if case.name.startswith("JPEG with EXIF"):
        rows, cols = np.nonzero(result.image > 0.1)
        assert np.ptp(rows) > 3 * np.ptp(cols)  # upright: the bar stands


@pytest.mark.parametrize("case", [c for c in UPLOADS if c.outcome == REFUSED], ids=str)
def test_refused_uploads_raise_image_error_from_the_decoder(case: Case) -> None:
    with pytest.raises(ImageError, match=case.expect.replace("(", r"\(").replace(")", r"\)")):
        decode_image(case.make())


# -- the same uploads through the command line and the Draw page -------------------------------------
def tiny_model(name: str = "tiny") -> keras.Model:
    inputs = keras.Input((28, 28), name="image")
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x), name=name)


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny-store")
    ModelStore(root).save("tiny", tiny_model(), {"architecture": "mlp", "parameters": 7850,
                                                 "test": {"accuracy": 0.1}})
    return root


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory, mnist_path: Path) -> Path:
    """A 1,000 + 100 image MNIST-shaped file: the CLI and the pages load it in milliseconds.

    It asks for ``mnist_path`` first so the session's real MNIST path is settled before any
    fixture here points ``DIGITLAB_MNIST`` elsewhere.
    """
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("tiny-mnist") / "mnist.npz"
    np.savez(path, x_train=rng.integers(0, 256, (1000, 28, 28), np.uint8), y_train=np.arange(1000) % 10,
             x_test=rng.integers(0, 256, (100, 28, 28), np.uint8), y_test=np.arange(100) % 10)
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every model and card file in the store and its bytes: to show nothing changed.

    The training queue's files (``queue.sqlite``, where the CLI records its runs) are not
    models and are left out.
    """
    if not folder.exists():
        return {}
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())
            if path.is_file() and not is_queue_file(path.name)}


@pytest.mark.parametrize("case", UPLOADS, ids=str)
def test_upload_corpus_through_the_cli(case: Case, tiny_store: Path, tmp_path: Path, capsys) -> None:
    before = snapshot(tiny_store)
    picture = tmp_path / "digit.png"
    picture.write_bytes(case.make())
    code = main(["predict", str(picture), "--model", "tiny", "--models", str(tiny_store)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    if case.outcome == REFUSED:
        assert code == 1 and ": error: " in captured.out and case.expect in captured.out
    else:
        assert code == 0 and captured.out.startswith(f"{picture}: ") and "error" not in captured.out
    assert snapshot(tiny_store) == before


@pytest.fixture(scope="module")
def draw_page(tiny_store: Path, tiny_mnist: Path):
    """One AppTest of the app on the Draw page's Upload input, shared by the upload cases."""
    with app_against(tiny_store, tiny_mnist) as app:
        app.segmented_control(key="draw_source").set_value(UPLOAD).run()
        yield app


def page_texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


@pytest.mark.parametrize("case", UPLOADS, ids=str)
def test_upload_corpus_through_the_draw_page(case: Case, draw_page, tiny_store: Path) -> None:
    before = snapshot(tiny_store)
    draw_page.file_uploader(key="draw_upload").set_value(("digit.png", case.make(), "image/png")).run()
    assert not draw_page.exception
    prediction = next((m.value for m in draw_page.metric if m.label == "Prediction"), None)
    if case.outcome == REFUSED:
        assert case.expect in page_texts(draw_page.error) and prediction is None
    else:
        assert prediction is not None and not draw_page.error
    assert snapshot(tiny_store) == before


# -- the drawing pad's message (what the browser sends after each stroke) ---------------------------------
def pad_png(picture: np.ndarray) -> bytes:
    return encode(Image.fromarray(picture))


PAD_MESSAGES = [
    Case("pad: a drawn seven", lambda: pad_message(pad_png(canvas())), DIGIT),
    Case("pad: an empty black canvas", lambda: pad_message(pad_png(canvas(()))), NO_DIGIT, "blank"),
    Case("pad: a single dot", lambda: pad_message(pad_png(single_dot())), NO_DIGIT, "single dot"),
    Case("pad: SVG instead of PNG", lambda: pad_message(b"<svg/>", "image/svg+xml"), REFUSED, "not arrive as a PNG"),
    Case("pad: damaged base64", lambda: "data:image/png;base64,%%%%", REFUSED, "not base64"),
    Case("pad: text sent as a PNG", lambda: pad_message(b"hello, server"), REFUSED, "not a PNG or JPEG"),
    Case("pad: truncated PNG", lambda: pad_message(pad_png(canvas())[:300]), REFUSED, "truncated"),
    Case("pad: PNG declaring 10000×10000", lambda: pad_message(pad_png(np.zeros((10_000, 10_000), np.uint8))),
         REFUSED, "pixels"),
    Case("pad: not a string", lambda: {"x": 1}, REFUSED, "not arrive as a PNG"),
    Case("pad: filled white", lambda: pad_message(pad_png(canvas((), background=(255, 255, 255, 255)))),
         NO_DIGIT, "one colour all over"),
    Case("pad: a large filled disc", lambda: pad_message(pad_png(filled("disc"))), NO_DIGIT, "filled shape"),
    Case("pad: 300,000 characters", lambda: "data:image/png;base64," + "A" * 300_000, REFUSED,
         "far larger than the pad ever sends"),
]


@pytest.fixture(scope="module")
def pad_page(tiny_store: Path, tiny_mnist: Path):
    """One AppTest of the Draw page, whose pad messages the cases forge through session state."""
    with app_against(tiny_store, tiny_mnist) as app:
        yield app


@pytest.mark.parametrize("case", PAD_MESSAGES, ids=str)
def test_pad_messages_through_the_draw_page(case: Case, pad_page, tiny_store: Path) -> None:
    before = snapshot(tiny_store)
    pad_page.session_state["draw_pad"] = {"drawing": case.make()}
    pad_page.run()
    assert not pad_page.exception
    prediction = next((m.value for m in pad_page.metric if m.label == "Prediction"), None)
    if case.outcome == REFUSED:
        assert case.expect in page_texts(pad_page.error) and prediction is None
    elif case.outcome == NO_DIGIT:
        assert case.expect in page_texts(pad_page.info).lower() and prediction is None
    else:
        assert prediction is not None and not pad_page.error
    assert snapshot(tiny_store) == before


# -- model files in the store ---------------------------------------------------------------------------
def lambda_model(marker: Path) -> keras.Model:
    """A model whose Lambda layer would write ``marker`` if its code were ever run."""
    inputs = keras.Input((28, 28))
    path = str(marker)  # a str closure: Keras can serialize it (a Path it cannot)
    x = keras.layers.Lambda(lambda t: (__import__("pathlib").Path(path).write_text("ran"), t)[1])(inputs)
    return keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(x)))


def wrong_shape_model() -> keras.Model:
    inputs = keras.Input((32, 32))
    return keras.Model(inputs, keras.layers.Dense(5)(keras.layers.Flatten()(inputs)))


def plant(store: ModelStore, name: str, payload: bytes) -> None:
    """Put a weights file and a card that matches its size into the store, as a copy would."""
    import json

    store.root.mkdir(parents=True, exist_ok=True)
    (store.root / f"{name}.0000.keras").write_bytes(payload)
    card = {"architecture": "mlp", "parameters": 1, "model_file": f"{name}.0000.keras",
            "model_bytes": len(payload), "test": {"accuracy": 0.5}}
    (store.root / f"{name}.json").write_text(json.dumps(card), encoding="utf-8")


MODEL_FILES = ("empty", "truncated", "corrupt", "wrong-shape", "lambda")


@pytest.fixture(scope="module")
def broken_store(tmp_path_factory) -> tuple[Path, Path]:
    """A store with one good model and one of each broken kind; returns (store, Lambda marker)."""
    root = tmp_path_factory.mktemp("broken-store")
    marker = root.parent / "lambda-ran.txt"
    store = ModelStore(root)
    store.save("good", tiny_model(), {"architecture": "mlp", "parameters": 7850, "test": {"accuracy": 0.9}})
    good_bytes = store.model_path("good").read_bytes()
    plant(store, "empty", b"")
    plant(store, "truncated", good_bytes[: len(good_bytes) // 3])
    plant(store, "corrupt", b"PK\x03\x04" + bytes(range(256)) * 40)
    store.save("wrong-shape", wrong_shape_model(), {"architecture": "mlp"})
    store.save("lambda", lambda_model(marker), {"architecture": "mlp"})
    marker.unlink(missing_ok=True)  # building the model ran the lambda; loading must not
    return root, marker


@pytest.mark.parametrize("name", MODEL_FILES)
def test_broken_model_file_is_refused_by_the_store(broken_store, name: str) -> None:
    root, marker = broken_store
    store, before = ModelStore(root), snapshot(root)
    expected = "expected (None, 28, 28)" if name == "wrong-shape" else f"model {name!r} cannot be loaded"
    with pytest.raises(StoreError) as raised:
        store.load(name)
    assert expected in str(raised.value)
    assert {entry.name for entry in store.list()} == {"good", *MODEL_FILES}
    assert store.load("good") is not None
    assert not marker.exists()
    assert snapshot(root) == before


@pytest.mark.parametrize("command", ["evaluate", "predict"])
@pytest.mark.parametrize("name", MODEL_FILES)
def test_broken_model_file_through_the_cli(broken_store, name: str, command: str, tmp_path, tiny_mnist,
                                           capsys) -> None:
    root, marker = broken_store
    before = snapshot(root)
    picture = tmp_path / "seven.png"
    picture.write_bytes(encode(ink_seven("L")))
    argv = ["evaluate", name] if command == "evaluate" else ["predict", str(picture), "--model", name]
    code = main([*argv, "--models", str(root), "--data", str(tiny_mnist)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("digitlab ")]
    assert f"{name!r}" in line
    assert not marker.exists() and snapshot(root) == before


def test_broken_model_files_through_the_draw_page(broken_store, tiny_mnist) -> None:
    """Compare mode shows why each broken model cannot be used; the good one answers."""
    root, marker = broken_store
    before = snapshot(root)
    with app_against(root, tiny_mnist) as app:
        app.segmented_control(key="draw_source").set_value(UPLOAD).run()
        app.file_uploader(key="draw_upload").set_value(("seven.png", encode(ink_seven("L")), "image/png"))
        app.toggle(key="draw_compare").set_value(True).run()
    assert not app.exception
    shown = page_texts(app.error) + page_texts(app.warning)
    for name in MODEL_FILES:
        assert name in shown
    assert any(metric.label == "good says" for metric in app.metric)
    assert not marker.exists() and snapshot(root) == before


# -- settings, names and stores --------------------------------------------------------------------------
NAN, INF = float("nan"), float("inf")
BAD_SETTINGS = [
    ({"learning_rate": NAN}, "learning rate"), ({"learning_rate": INF}, "learning rate"),
    ({"learning_rate": -INF}, "learning rate"), ({"learning_rate": 0.0}, "learning rate"),
    ({"learning_rate": -1e-3}, "learning rate"),
    ({"epochs": 0}, "epochs"), ({"epochs": -3}, "epochs"), ({"epochs": NAN}, "epochs"),
    ({"batch_size": 0}, "batch size"), ({"batch_size": -32}, "batch size"), ({"batch_size": INF}, "batch size"),
    ({"validation_fraction": NAN}, "validation fraction"), ({"validation_fraction": -0.1}, "validation fraction"),
    ({"validation_fraction": INF}, "validation fraction"),
    ({"train_size": 0}, "training-set size"), ({"train_size": -5}, "training-set size"),
    ({"seed": -1}, "seed must be"), ({"seed": 2**40}, "seed must be"), ({"seed": 1.5}, "seed must be"),
    ({"hyperparameters": {"units": 0}}, "units"), ({"hyperparameters": {"units": -5}}, "units"),
    ({"hyperparameters": {"units": NAN}}, "units"), ({"hyperparameters": {"units": 2.5}}, "units"),
    ({"hyperparameters": {"units": True}}, "units"), ({"hyperparameters": {"depth": 0}}, "depth"),
    ({"hyperparameters": {"dropout": NAN}}, "dropout"), ({"hyperparameters": {"dropout": -0.1}}, "dropout"),
    ({"hyperparameters": {"dropout": 1.0}}, "dropout"), ({"hyperparameters": {"dropout": INF}}, "dropout"),
]


@pytest.mark.parametrize(("change", "message"), BAD_SETTINGS, ids=lambda value: repr(value))
def test_bad_settings_are_refused_before_any_work(change, message, small_data, tmp_path, monkeypatch) -> None:
    def no_work(*args, **kwargs):
        raise AssertionError("a model was built for settings that cannot work")

    monkeypatch.setattr(Architecture, "build", no_work)
    config = TrainConfig(**{"architecture": "mlp", "epochs": 1, "train_size": 500, **change})
    with pytest.raises(ValueError, match=message):
        train(config, small_data)
    with pytest.raises(ValueError, match=message):
        train_and_store(config, small_data, ModelStore(tmp_path / "models"), "new")
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--learning-rate", "nan"], "learning rate"), (["--learning-rate", "inf"], "learning rate"),
        (["--learning-rate", "0"], "learning rate"), (["--learning-rate", "-0.01"], "learning rate"),
        (["--epochs", "0"], "epochs"), (["--epochs", "-2"], "epochs"),
        (["--batch-size", "0"], "batch size"), (["--batch-size", "-64"], "batch size"),
        (["--validation-fraction", "nan"], "validation fraction"),
        (["--validation-fraction", "-0.2"], "validation fraction"),
        (["--train-size", "0"], "training-set size"), (["--train-size", "-5"], "training-set size"),
        (["--name", "../evil"], "invalid model name"), (["--name", "a/b"], "invalid model name"),
        (["--name", "/etc/passwd"], "invalid model name"), (["--name", "..\\evil"], "invalid model name"),
        (["--name", "cnn"], "shipped model"), (["--name", "mlp"], "shipped model"),
        (["--name", "CNN"], "the shipped model 'cnn'"), (["--seed", "-1"], "seed must be"),
        (["--seed", str(2**40)], "seed must be"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else value,
)
def test_bad_settings_and_names_through_the_cli(options, message, tmp_path, tiny_mnist, capsys) -> None:
    store = tmp_path / "models"
    code = main(["train", "--arch", "mlp", "--epochs", "1", "--name", "ok", *options,
                 "--models", str(store), "--data", str(tiny_mnist)])
    err = capsys.readouterr().err
    assert code == 1 and message in err and "Traceback" not in err
    assert snapshot(store) == {}


def test_non_numeric_setting_is_a_usage_error(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["train", "--epochs", "nan", "--models", str(tmp_path)])
    assert exited.value.code == 2 and "invalid int value" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["../evil", "a/b", "/abs", "", ".hidden", "cnn", "lenet", "mlp", "CNN", "LeNet"])
def test_bad_names_leave_the_store_untouched(name, tmp_path, small_data) -> None:
    store = ModelStore(tmp_path / "models")
    store.save("keep", tiny_model(), {"architecture": "mlp"})
    before = snapshot(store.root)
    with pytest.raises(ValueError, match="invalid model name|shipped model"):
        store.save(name, tiny_model(), {"architecture": "mlp"})
    with pytest.raises(ValueError, match="invalid model name|shipped model"):
        check_run(TrainConfig("mlp", epochs=1, train_size=500), 3000, store, name)
    assert snapshot(store.root) == before
    assert not (tmp_path / "evil.json").exists() and not (tmp_path / "evil").exists()


@pytest.fixture(scope="module")
def train_page(tmp_path_factory, tiny_mnist):
    """One AppTest of the app on the Train page, against an empty store."""
    store = tmp_path_factory.mktemp("train-page-store")
    with app_against(store, tiny_mnist, page="app_pages/train.py") as app:
        yield app, store


@pytest.mark.parametrize(
    ("widget", "value", "message"),
    [
        ("train_rate_mlp", "nan", "learning rate"), ("train_rate_mlp", "inf", "learning rate"),
        ("train_rate_mlp", "0", "learning rate"), ("train_rate_mlp", "-1e-3", "learning rate"),
        ("train_rate_mlp", "fast", "not a number"),
        ("train_epochs_mlp", "0", "epochs"), ("train_epochs_mlp", "-1", "epochs"),
        ("train_batch_mlp", "0", "batch size"), ("train_batch_mlp", "-16", "batch size"),
        ("train_size_mlp", "0", "training-set size"), ("train_size_mlp", "-1000", "training-set size"),
        ("train_name_mlp", "../evil", "invalid model name"), ("train_name_mlp", "a/b", "invalid model name"),
        ("train_name_mlp", "cnn", "shipped model"), ("train_name_mlp", "CNN", "the shipped model 'cnn'"),
        ("train_epochs_mlp", "NaN", "epochs must be a whole number"),
        ("train_epochs_mlp", "1e30", "epochs must be a whole number"),
        ("train_epochs_mlp", "2.5", "epochs must be a whole number"),
        ("train_epochs_mlp", "", "epochs must be a whole number"),
        ("train_epochs_mlp", "1000000", "epochs must be 1–500"),
        ("train_batch_mlp", "12.5", "batch size must be a whole number"),
        ("train_size_mlp", "1e4", "training-set size must be a whole number"),
        ("train_seed_mlp", "-1", "seed must be 0–4294967295"),
        ("train_seed_mlp", str(2**40), "seed must be 0–4294967295"),
        ("train_seed_mlp", "0.5", "seed must be a whole number"),
    ],
)
def test_bad_settings_and_names_through_the_train_page(train_page, widget, value, message) -> None:
    app, store = train_page
    defaults = {"train_rate_mlp": "0.001", "train_epochs_mlp": "1", "train_batch_mlp": "128",
                "train_size_mlp": "1000", "train_seed_mlp": "0", "train_name_mlp": "fine-name"}
    for key, default in {**defaults, widget: value}.items():
        app.text_input(key=key).set_value(default)
    app.button(key="train_start").click().run()
    assert not app.exception
    assert "Not started: " in page_texts(app.error) and message in page_texts(app.error)
    assert snapshot(store) == {}


def test_empty_store(tmp_path, capsys) -> None:
    (tmp_path / "models").mkdir()
    assert ModelStore(tmp_path / "models").list() == []
    assert main(["list", "--models", str(tmp_path / "models")]) == 0
    assert "the store is empty" in capsys.readouterr().out
    picture = tmp_path / "seven.png"
    picture.write_bytes(encode(ink_seven("L")))
    assert main(["predict", str(picture), "--models", str(tmp_path / "models")]) == 1
    err = capsys.readouterr().err
    assert "no model named 'cnn'" in err and "Traceback" not in err


@pytest.fixture()
def read_only_store(tmp_path, monkeypatch) -> ModelStore:
    """A store folder without write permission (simulated for root, who ignores permissions)."""
    import errno

    store = ModelStore(tmp_path / "models")
    store.save("keep", tiny_model(), {"architecture": "mlp", "test": {"accuracy": 0.5}})
    store.root.chmod(0o555)
    if os.geteuid() == 0:
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: (
            False if Path(path) == store.root and mode & os.W_OK else real_access(path, mode, **kw)))

        def read_only(*args, **kwargs):
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(keras.Model, "save", read_only)
    yield store
    store.root.chmod(0o755)


def test_read_only_store_refuses_training_up_front_and_keeps_working(read_only_store, small_data,
                                                                     tiny_mnist, capsys) -> None:
    store = read_only_store
    before = snapshot(store.root)
    with pytest.raises(ValueError, match="not a writable folder"):
        train_and_store(TrainConfig("mlp", epochs=1, train_size=500), small_data, store, "new")
    code = main(["train", "--arch", "mlp", "--epochs", "1", "--name", "new", "--models", str(store.root),
                 "--data", str(tiny_mnist)])
    err = capsys.readouterr().err
    assert code == 1 and "not a writable folder" in err and "Traceback" not in err
    with pytest.raises(StoreError, match="could not save"):
        store.save("new", tiny_model(), {"architecture": "mlp"})
    assert [entry.name for entry in store.list()] == ["keep"] and store.load("keep") is not None
    assert snapshot(store.root) == before


# -- properties ---------------------------------------------------------------------------------------------
HOSTILE_DTYPES = ["int8", "int16", "int32", "int64", "uint32", "float16", "float32", "float64", "bool",
                  "uint8", "uint16", "complex64"]


@settings(derandomize=True, database=None, max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(picture=hnp.arrays(st.sampled_from(HOSTILE_DTYPES).map(np.dtype),
                          hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=24)))
def test_any_array_gives_a_result_or_a_value_error(picture: np.ndarray) -> None:
    """Random arrays of any type, shape and values (NaN, ±inf, negatives): never another exception."""
    try:
        result = preprocess(picture)
    except ValueError as error:
        assert str(error)
        return
    if result.image is None:
        assert result.message
    else:
        assert result.image.shape == (28, 28) and np.isfinite(result.image).all()
        assert result.image.min() >= 0.0 and result.image.max() <= 1.0


@st.composite
def photo_like(draw) -> np.ndarray:
    """A photo-like grey picture up to 200 px a side: a noisy light ramp, or a bright patch of any
    size on a darker ground (a sheet on a desk, a sliver of one, the whole picture)."""
    height, width = draw(st.integers(1, 200)), draw(st.integers(1, 200))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        ramp = np.linspace(0.0, 1.0, width)[np.newaxis, :] * rng.uniform(0.0, 1.0)
        return np.rint(255 * np.clip(ramp + rng.normal(0.0, 0.02, (height, width)), 0, 1)).astype(np.uint8)
    picture = np.full((height, width), float(rng.integers(0, 80)))
    top, left = draw(st.integers(0, height - 1)), draw(st.integers(0, width - 1))
    picture[top:top + draw(st.integers(1, height)), left:left + draw(st.integers(1, width))] = 230
    return np.clip(picture + rng.normal(0.0, 3.0, picture.shape), 0, 255).astype(np.uint8)


@settings(derandomize=True, database=None, max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(picture=photo_like())
def test_any_photo_like_picture_gives_a_digit_or_a_message(picture: np.ndarray) -> None:
    """Light ramps and bright patches (the inputs the photo paths look for): never an exception."""
    result = preprocess(picture)
    assert (result.image is None) == bool(result.message)
    if result.image is not None:
        assert result.image.shape == (28, 28) and np.isfinite(result.image).all()


def test_a_photo_with_a_bright_sliver_down_one_side_gives_a_message_not_an_error() -> None:
    picture = np.full((120, 40), 0.1)
    picture[:, -2:] = 0.9  # a sliver of paper at the edge of a dark photo: no sheet to cut down to
    noisy = np.clip(picture + np.random.default_rng(1).normal(0.0, 0.02, picture.shape), 0, 1)
    result = preprocess(np.rint(255 * noisy).astype(np.uint8))
    assert (result.image is None) == bool(result.message)


@st.composite
def encoded_pictures(draw) -> bytes:
    """A valid PNG or JPEG of random pixels, in any mode an upload might use."""
    mode = draw(st.sampled_from(["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "CMYK"]))
    width, height = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        picture = Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    else:
        bands = len(Image.new(mode, (1, 1)).getbands())
        raw = rng.integers(0, 256, (height, width, bands), dtype=np.uint8)
        picture = Image.frombytes(mode, (width, height), raw.tobytes()) if mode != "1" else \
            Image.fromarray(raw[..., 0] > 127)
    image_format = "JPEG" if mode in ("CMYK",) or (mode in ("L", "RGB") and draw(st.booleans())) else "PNG"
    return encode(picture, image_format)


@settings(derandomize=True, database=None, max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(encoded_pictures(), st.binary(max_size=400),
                      st.binary(max_size=400).map(lambda body: b"\x89PNG\r\n\x1a\n" + body)))
def test_any_bytes_give_a_result_or_an_image_error(data: bytes) -> None:
    """Random valid pictures of every mode and random bytes: a result or ``ImageError``, nothing else."""
    try:
        result = preprocess(data)
    except ImageError as error:
        assert str(error)
        return
    assert result.image is None or (result.image.shape == (28, 28) and np.isfinite(result.image).all())


# -- security defaults ----------------------------------------------------------------------------------------
def test_streamlit_config_keeps_the_safe_defaults() -> None:
    """Local only, XSRF and CORS protection on, small uploads, no error details on the page."""
    import tomllib

    from digitlab.images import ALLOWED_FORMATS, DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    server = config["server"]
    assert server["address"] == "127.0.0.1"
    assert server["enableXsrfProtection"] is True and server["enableCORS"] is True
    assert 1 <= server["maxUploadSize"] <= DEFAULT_MAX_BYTES / 2**20  # MB; the decoder's cap backs it up
    assert config["client"]["showErrorDetails"] in ("none", False)
    assert ALLOWED_FORMATS == ("PNG", "JPEG") and DEFAULT_MAX_PIXELS <= 4096 * 4096
    assert server["allowedHosts"] == ["localhost", "127.0.0.1", "::1"]  # DNS rebinding: see docs/security.md
    assert server["maxWidgetStateSize"] == 1  # MB a browser may send in one message; a drawing is ~10 kB


# -- names that differ only in case ----------------------------------------------------------------------
def test_a_name_differing_from_a_stored_one_only_in_case_is_taken(tmp_path) -> None:
    """On a case-insensitive file system My-Model.json would overwrite my-model.json."""
    store = ModelStore(tmp_path / "models")
    store.save("my-model", tiny_model(), {"architecture": "mlp"})
    before = snapshot(store.root)
    with pytest.raises(ValueError, match="already exists as 'my-model'"):
        check_run(TrainConfig("mlp", epochs=1, train_size=500), 3000, store, "My-Model")
    with pytest.raises(ValueError, match="already exists as 'my-model'"):
        store.save("My-Model", tiny_model(), {"architecture": "mlp"}, overwrite=True)
    assert snapshot(store.root) == before


# -- a training child that is killed -------------------------------------------------------------------
def test_a_killed_training_child_is_reported_as_killed_not_by_its_log(tmp_path, caplog) -> None:
    from digitlab.jobs.process import TrainingJob

    rng = np.random.default_rng(0)
    data = tmp_path / "tiny.npz"
    np.savez(data, x_train=rng.integers(0, 255, (300, 28, 28), dtype=np.uint8), y_train=np.arange(300) % 10,
             x_test=rng.integers(0, 255, (50, 28, 28), dtype=np.uint8), y_test=np.arange(50) % 10)
    (tmp_path / "models").mkdir()
    config = TrainConfig("mlp", epochs=1, batch_size=32, train_size=200, validation_fraction=0.1)
    job = TrainingJob(config, "doomed", tmp_path / "models", data_path=data, runner="test_jobs:fake_killed")
    with caplog.at_level("WARNING", logger="digitlab.jobs"):
        job.start()
        snapshot_ = job.wait(60)
    assert (snapshot_.status, snapshot_.error) == ("failed", "the training process was killed (signal 9, SIGKILL)")
    assert "use_unbounded_threadpool" in caplog.text  # the details are in the server's log


# -- the command line: wrong kinds of paths ------------------------------------------------------------
def test_data_that_is_not_an_npz_gets_a_true_message(tiny_store: Path, tmp_path, capsys) -> None:
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not MNIST\n", encoding="utf-8")
    code = main(["evaluate", "tiny", "--models", str(tiny_store), "--data", str(text_file)])
    err = capsys.readouterr().err
    assert code == 1 and "is not an MNIST .npz" in err and "allow_pickle" not in err


def test_listing_a_store_that_is_a_file_fails(tmp_path, capsys) -> None:
    not_a_folder = tmp_path / "models.txt"
    not_a_folder.write_text("", encoding="utf-8")
    code = main(["list", "--models", str(not_a_folder)])
    assert (code, capsys.readouterr().err.strip()) == (
        1, f"digitlab list: error: the model store {not_a_folder} is a file, not a folder; "
           "point --models or $DIGITLAB_MODELS at a folder")


# -- server paths stay on the server -----------------------------------------------------------------------
SECRET_FOLDER = "secret-server-folder"


def test_a_missing_mnist_is_told_to_visitors_without_its_path(tiny_store: Path, tmp_path, caplog) -> None:
    missing = tmp_path / SECRET_FOLDER / "mnist.npz"
    with caplog.at_level("WARNING", logger="digitlab.app"), app_against(tiny_store, missing) as app:
        shown = page_texts(app.caption) + page_texts(app.markdown) + page_texts(app.info) + page_texts(app.error)
    assert "MNIST is not available on this server" in shown and SECRET_FOLDER not in shown \
        and SECRET_FOLDER in caplog.text


def test_a_run_without_mnist_is_refused_without_the_path(tmp_path, caplog) -> None:
    store = tmp_path / "models"
    store.mkdir()
    missing = tmp_path / SECRET_FOLDER / "mnist.npz"
    with caplog.at_level("WARNING", logger="digitlab.app"), \
            app_against(store, missing, page="app_pages/train.py") as app:
        app.button(key="train_start").click().run()
        errors = page_texts(app.error)
    assert errors.startswith("Not started: MNIST is not available on this server") and SECRET_FOLDER not in errors


def test_server_paths_are_hidden_in_visitors_messages() -> None:
    from app_pages.common import HIDDEN_PATH, for_visitors

    text = "no model named 'x' in /srv/digitlab/models; see C:\\Users\\op\\models and ~/models, rate 1/2"
    assert for_visitors(text) == (f"no model named 'x' in {HIDDEN_PATH}; see {HIDDEN_PATH} and {HIDDEN_PATH}, "
                                  "rate 1/2")


# -- the upload limit --------------------------------------------------------------------------------------------
def test_the_upload_label_states_the_limit_the_browser_applies(tiny_store: Path, tmp_path) -> None:
    """The browser counts maxUploadSize in units of 10^6 bytes outside Windows and says "16.0MB";
    the label gives the exact bytes (and MiB, the unit many file managers call MB)."""
    import tomllib

    megabytes = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))["server"][
        "maxUploadSize"]
    with app_against(tiny_store, tmp_path / "no-mnist.npz") as app:
        app.segmented_control(key="draw_source").set_value(UPLOAD).run()
        label = app.get("file_uploader")[0].proto.label
    assert f"at most {megabytes} MB ({megabytes * 10**6:,} bytes, {megabytes * 10**6 / 2**20:.2f} MiB)" in label
