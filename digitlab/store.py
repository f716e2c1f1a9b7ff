"""The model store: a folder of ``.keras`` files, each described by a JSON run card.

A model ``NAME`` is the card ``NAME.json``; the card names its weights file
``NAME.<id>.keras``. Saving writes the new weights file under a fresh name, then replaces the
card in one atomic rename — the commit point — and only then deletes the old weights. A
process killed at any moment therefore leaves either the old model or the new one, whole.
Listing reads only the small JSON cards; TensorFlow is imported only to load a model.
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digitlab.card import RunCard

SHIPPED_MODELS = frozenset({"mlp", "lenet", "cnn"})
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
CARD_SUFFIX = ".json"
MODEL_SUFFIX = ".keras"
TEMP_PREFIX = ".tmp-"
# A model's own "not a digit" statistics (digitlab.feature_novelty) sit beside its weights, named after them.
SIDECAR_SUFFIX = ".features.npz"
ENV_VAR = "DIGITLAB_MODELS"
LOAD_ATTEMPTS = 5  # a model replaced while it is being loaded is loaded again from its new file


class StoreError(Exception):
    """A model cannot be saved or loaded; the message says which and why."""


class StoreNotWritableError(StoreError, ValueError):
    """The store's folder cannot take a new model: the server's setup, not the user's settings.

    A ``ValueError`` too, as every refusal of a run before it starts is.
    """


@dataclass(frozen=True)
class ModelEntry:
    """One model as listed: its card, or why it cannot be used.

    ``card`` is the card's JSON as stored (for downloads and summaries); ``run`` is the same card
    read once as a :class:`~digitlab.card.RunCard`, the way every page and command reads it.
    """

    name: str
    card: dict[str, Any] | None
    error: str | None = None

    @functools.cached_property
    def run(self) -> RunCard:
        """The card as a :class:`~digitlab.card.RunCard` (an empty one when it is unreadable), read
        once per entry: pickers and captions ask for it on every rerun."""
        if self.card is None:
            return RunCard(name=self.name)
        try:
            return RunCard.from_dict(self.card)
        except ValueError:
            return RunCard(name=self.name, extra=dict(self.card))

    @property
    def usable(self) -> bool:
        return self.error is None

    @property
    def shipped(self) -> bool:
        return self.name in SHIPPED_MODELS

    @property
    def headline(self) -> str:
        """e.g. ``cnn — cnn, 99.62 % test accuracy, 93,962 parameters``."""
        if self.card is None:
            return f"{self.name} — unusable: {self.error}"
        run = self.run
        accuracy = run.test_accuracy
        accuracy_text = f"{accuracy * 100:.2f} % test accuracy" if accuracy is not None else "not evaluated"
        return f"{self.name} — {run.architecture}, {accuracy_text}, {run.parameters or 0:,} parameters"


def validate_name(name: str, *, allow_shipped: bool = False) -> str:
    """Return ``name`` if it is a safe model name, else raise ``ValueError`` saying why."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"invalid model name {name!r}: use 1–40 letters, digits, '-' or '_', starting with a "
            "letter or digit (no slashes, dots or spaces)"
        )
    if name.lower() in SHIPPED_MODELS and not allow_shipped:
        if name in SHIPPED_MODELS:
            raise ValueError(f"{name!r} is a shipped model; pick another name")
        # "CNN" beside "cnn" reads as the same model in the picker, and is the same file on a
        # case-insensitive file system (macOS, Windows).
        raise ValueError(f"{name!r} differs from the shipped model {name.lower()!r} only in case; "
                         "pick another name")
    return name


def already_exists(name: str, taken: str) -> str:
    """The message for a name that is taken, exactly or by a name differing only in case."""
    same = "" if taken == name else f" as {taken!r} (names that differ only in case are the same name)"
    return f"a model named {name!r} already exists{same}; pick another name"


def default_models_dir() -> Path:
    """``$DIGITLAB_MODELS``, else the ``models/`` folder next to the package's project root."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parent.parent / "models"


class ModelStore:
    """Read and write models in one folder. Safe to share between threads and processes."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_models_dir()

    # -- reading ---------------------------------------------------------------------------
    def card_path(self, name: str) -> Path:
        return self.root / f"{validate_name(name, allow_shipped=True)}{CARD_SUFFIX}"

    def list(self) -> list[ModelEntry]:
        """Every model in the store, shipped ones first; broken ones carry their error."""
        if not self.root.is_dir():
            return []
        entries = [self._entry(path) for path in self.root.glob(f"*{CARD_SUFFIX}")]
        entries = [entry for entry in entries if entry is not None]
        return sorted(entries, key=lambda e: (not e.shipped, e.name))

    def _entry(self, card_path: Path) -> ModelEntry | None:
        name = card_path.name[: -len(CARD_SUFFIX)]
        if not NAME_PATTERN.fullmatch(name):
            return None
        for _ in range(LOAD_ATTEMPTS):  # a save may replace card and file between our two reads
            try:
                card = self.read_card(name)
            except StoreError as error:
                return ModelEntry(name, None, str(error))
            try:
                size = (self.root / card["model_file"]).stat().st_size
            except OSError:
                size = None
            if size == card.get("model_bytes"):
                return ModelEntry(name, card)
        return ModelEntry(name, card, "the model file is missing or does not match its card")

    def taken_name(self, name: str) -> str | None:
        """The stored model whose name equals ``name`` ignoring case, or None.

        Names are compared this way everywhere a new model could take a name: on a
        case-insensitive file system ``My-Model.json`` would overwrite ``my-model.json``.
        """
        if not self.root.is_dir():
            return None
        wanted = name.lower()
        return next((path.name[: -len(CARD_SUFFIX)] for path in self.root.glob(f"*{CARD_SUFFIX}")
                     if path.name[: -len(CARD_SUFFIX)].lower() == wanted), None)

    def read_card(self, name: str) -> dict[str, Any]:
        """The run card of ``name``; raises :class:`StoreError` when missing or malformed."""
        path = self.card_path(name)
        try:
            card = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StoreError(f"no model named {name!r} in {self.root}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise StoreError(f"the run card of {name!r} is unreadable ({error})") from None
        model_file = card.get("model_file") if isinstance(card, dict) else None
        if not isinstance(model_file, str) or Path(model_file).name != model_file:
            raise StoreError(f"the run card of {name!r} does not name a model file")
        return card

    def model_path(self, name: str) -> Path:
        """Path of the weights file the card of ``name`` points to."""
        return self.root / self.read_card(name)["model_file"]

    def load(self, name: str):
        """Load ``name`` with ``safe_mode=True`` and check it maps (N, 28, 28) to (N, 10).

        Raises:
            StoreError: missing, corrupt, truncated, unsafe (e.g. a ``Lambda`` layer) or the
                wrong shape — the message says which model and what is wrong.
        """
        import keras  # late: listing the store must not pay for TensorFlow

        for attempt in range(LOAD_ATTEMPTS):
            path = self.model_path(name)
            try:
                model = keras.saving.load_model(path, compile=False, safe_mode=True)
                break
            except Exception as error:  # noqa: BLE001 - Keras raises many types for a bad file
                # A save replaced the model (and deleted this file) while we read it: the card
                # now names the new, whole file, so load that one.
                if attempt + 1 < LOAD_ATTEMPTS and self.model_path(name) != path:
                    continue
                raise StoreError(f"model {name!r} cannot be loaded: {_short(error)}") from None
        input_shape = tuple(getattr(model, "input_shape", ()) or ())
        output_shape = tuple(getattr(model, "output_shape", ()) or ())
        if input_shape[1:] != (28, 28) or output_shape[1:] != (10,):
            raise StoreError(
                f"model {name!r} has input {input_shape} and output {output_shape}; "
                "expected (None, 28, 28) → (None, 10)"
            )
        return model

    # -- writing ---------------------------------------------------------------------------
    def save(self, name: str, model, card: dict[str, Any], *, overwrite: bool = False,
             allow_shipped: bool = False) -> Path:
        """Store ``model`` (without optimizer state) and its card under ``name``, atomically.

        Raises:
            ValueError: an invalid name, a shipped name, or a taken name without ``overwrite``.
            StoreError: the folder is not writable or the disk is full; nothing is changed.
        """
        validate_name(name, allow_shipped=allow_shipped)
        card_path = self.root / f"{name}{CARD_SUFFIX}"
        taken = self.taken_name(name)
        if taken is not None and (taken != name or not overwrite):
            raise ValueError(already_exists(name, taken))
        previous = self._previous_model_file(name)
        model_file = f"{name}.{secrets.token_hex(4)}{MODEL_SUFFIX}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            size = self._write_model(model, self.root / model_file)
            card = {**card, "name": name, "model_file": model_file, "model_bytes": size}
            _atomic_write_text(card_path, json.dumps(card, indent=1))
        except OSError as error:
            (self.root / model_file).unlink(missing_ok=True)
            raise StoreError(f"could not save {name!r} in {self.root}: {error.strerror or error}") from None
        if previous and previous != model_file:
            (self.root / previous).unlink(missing_ok=True)
            (self.root / sidecar_name(previous)).unlink(missing_ok=True)
        return card_path

    def update_card(self, name: str, fields: dict[str, Any], *, model_file: str) -> dict[str, Any]:
        """Add or replace ``fields`` of the card of ``name`` in one atomic rename; the weights stay.

        ``model_file`` is the weights file the fields were computed from: when a save has
        replaced the model meanwhile, nothing is written, so a card never describes weights it
        does not point to.

        Raises:
            StoreError: the model is missing, was replaced, or the folder cannot be written.
        """
        card = self.read_card(name)
        if card["model_file"] != model_file:
            raise StoreError(f"{name!r} was replaced while it was being measured; run the command again")
        card = {**card, **fields}
        try:
            _atomic_write_text(self.card_path(name), json.dumps(card, indent=1))
        except OSError as error:
            raise StoreError(f"could not update the card of {name!r}: {error.strerror or error}") from None
        return card

    def _previous_model_file(self, name: str) -> str | None:
        try:
            return self.read_card(name)["model_file"]
        except StoreError:
            return None

    @staticmethod
    def _write_model(model, path: Path) -> int:
        """Write an optimizer-free copy to a temporary ``.keras``, fsync, rename into place."""
        import keras

        # A new functional wrapper over the same layers is uncompiled, so no optimizer state
        # is written (clone_model would compile the copy and triple the file size).
        bare = keras.Model(model.inputs, model.outputs, name=model.name)
        temp = path.with_name(f"{TEMP_PREFIX}{secrets.token_hex(4)}{MODEL_SUFFIX}")
        try:
            bare.save(temp)
            _fsync(temp)
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
        _fsync_dir(path.parent)
        return path.stat().st_size

    def delete(self, name: str) -> None:
        """Remove a user model (card first, so it disappears at once); shipped ones are kept."""
        validate_name(name)
        model_file = self._previous_model_file(name)
        self.card_path(name).unlink(missing_ok=True)
        if model_file:
            (self.root / model_file).unlink(missing_ok=True)
            (self.root / sidecar_name(model_file)).unlink(missing_ok=True)

    def clean(self, min_age_seconds: float = 600.0) -> list[str]:
        """Delete temp files, and weights (with their feature statistics) no card points to, left
        behind by a killed save or a replaced model.

        Only files older than ``min_age_seconds`` go: a younger one may belong to a save that
        another process is making right now.
        """
        if not self.root.is_dir():
            return []
        cutoff = time.time() - min_age_seconds
        entries = self.list()
        referenced = {entry.card["model_file"] for entry in entries if entry.card}
        referenced |= {sidecar_name(model_file) for model_file in referenced}
        # Weights whose card is unreadable are kept: the card may be repaired by hand.
        unreadable = {entry.name for entry in entries if entry.card is None}
        removed = []
        for path in self.root.iterdir():
            stray_temp = path.name.startswith(TEMP_PREFIX)
            belongs_to_weights = path.suffix == MODEL_SUFFIX or path.name.endswith(SIDECAR_SUFFIX)
            orphan = (belongs_to_weights and path.name not in referenced
                      and path.name.split(".")[0] not in unreadable)
            if path.is_file() and (stray_temp or orphan) and path.stat().st_mtime <= cutoff:
                try:
                    path.unlink()
                    removed.append(path.name)
                except OSError:
                    pass
        return removed


def sidecar_name(model_file: str) -> str:
    """The feature statistics' file name for a weights file: ``cnn.1a2b.keras`` → ``cnn.1a2b.features.npz``."""
    return f"{Path(model_file).stem}{SIDECAR_SUFFIX}"


def _atomic_write_text(path: Path, text: str) -> None:
    handle, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fchmod(file.fileno(), 0o644)
            os.fsync(file.fileno())
        os.replace(temp_name, path)
    finally:
        Path(temp_name).unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync(path: Path) -> None:
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def _fsync_dir(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:200]
