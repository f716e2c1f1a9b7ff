"""The Train page's "Fine-tune on your digits" section, and the forgetting meter of every fine-tuned model.

The run waits in the same training queue as every other run and trains in the same kind of child
process, with the fine-tuning runner (:func:`digitlab.jobs.child.run_finetune_and_store`, the
CLI's ``finetune_and_store``), so it shows up in the queue with its curves, Stop button and outcome.
"""

from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from app_pages.common import WATCH_KEY, counted, get_store, list_models, show_outcome
from app_pages.labelling import digit_count, get_digits_db, own_writer, shown, whose, writer_choice
from digitlab.digits_db import DigitsDbError
from digitlab.finetune_config import FINETUNE_DEFAULTS, MIN_DIGITS, FinetuneConfig, ForgettingMeter, check_finetune
from digitlab.jobs.executor import QueueExecutor
from digitlab.jobs.queue import RunRequest

FEEDBACK_KEY = "finetune_feedback"
PERCENT = st.column_config.NumberColumn(format="percent")


def finetune_ui(executor: QueueExecutor, owner: str, owner_label: str) -> None:
    """Pick a base model and a writer, start fine-tuning; then the meters of fine-tuned models."""
    st.subheader(":material/tune: Fine-tune on your digits")
    st.caption("Start from a trained model and teach it one writer's handwriting. Part of each digit's "
               "drawings is held out to measure the gain; MNIST images are mixed in so the model keeps "
               "what it knew, and the forgetting meter shows what it cost.")
    usable = [entry for entry in list_models() if entry.usable]
    try:
        counts = get_digits_db().counts()
    except DigitsDbError as error:
        st.error(f"Your digits cannot be read: {shown(error)}.", icon=":material/database:")
        return
    if not usable or not counts:
        st.caption("Fine-tuning needs a model and some labelled digits: label drawings on the **Draw** page "
                   "or import them with `digitlab digits import`.")
        return
    writers = list(counts)
    with st.form("finetune_settings", border=True):
        base_column, writer_column, epochs_column = st.columns(3)
        names = [entry.name for entry in usable]
        base_column.selectbox("Base model", names, index=names.index("cnn") if "cnn" in names else 0,
                              key="finetune_base")
        writer_column.selectbox("Writer", writers, index=own_writer(writers), key="finetune_writer",
                                placeholder="Choose a writer",
                                format_func=lambda name: writer_choice(name, counts))
        epochs_column.number_input("Epochs", 1, 100, FINETUNE_DEFAULTS.epochs, key="finetune_epochs")
        st.text_input("New model name (empty: base-writer)", key="finetune_name", max_chars=40)
        st.form_submit_button("Start fine-tuning", icon=":material/play_arrow:", key="finetune_start",
                              on_click=_start, args=(executor, owner, owner_label, counts))
    show_outcome(st.session_state.pop(FEEDBACK_KEY, None))
    meters_ui()


def suggested_name(base: str, writer: str) -> str:
    """``<base>-<writer>`` reduced to the characters a model name may hold."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", f"{base}-{writer}").strip("-_")[:40] or "finetuned"


def _start(executor: QueueExecutor, owner: str, owner_label: str, counts: dict[str, list[int]]) -> None:
    """The Start button's callback: check, then queue the run."""
    state = st.session_state
    base, writer = state["finetune_base"], state["finetune_writer"]
    if writer is None:
        state[FEEDBACK_KEY] = ("error", "Not started: choose the writer whose digits to teach.")
        return
    name = (state.get("finetune_name") or "").strip() or suggested_name(base, writer)
    store = get_store()
    architecture = next((entry.card.get("architecture", "") for entry in list_models()
                         if entry.name == base and entry.card), "")
    config = FinetuneConfig(base=base, writer=writer, architecture=architecture,
                            epochs=int(state["finetune_epochs"]), digits_db=str(get_digits_db().path))

    try:
        stored = sum(counts.get(writer, []))
        if stored < MIN_DIGITS:
            raise ValueError(f"{writer!r} has {digit_count(stored)}; fine-tuning needs {MIN_DIGITS}")
        check_finetune(config, store, name)
        [run] = executor.queue.submit([RunRequest(config, name)], owner, data_size=0, executor=executor.kind,
                                      owner_label=owner_label)
    except ValueError as error:
        state[FEEDBACK_KEY] = ("error", f"Not started: {shown(error)}.")
    except Exception as error:  # noqa: BLE001 - a missing base model's StoreError, shown as a message
        state[FEEDBACK_KEY] = ("error", f"Not started: {shown(error)}.")
    else:
        executor.wake()
        state[WATCH_KEY] = run.id
        state[FEEDBACK_KEY] = ("success", f"Queued fine-tuning {base} on {whose(writer)} digits as {name!r}: "
                                          f"number {run.position} in the queue, its progress is in the queue above.")


def meters_ui() -> None:
    """The forgetting meter of every fine-tuned model in the store."""
    rows = []
    for entry in list_models():
        tuned = (entry.card or {}).get("finetune")
        if not entry.usable or not tuned:
            continue
        meter = ForgettingMeter.from_dict(tuned["meter"])
        rows.append({"model": entry.name, "base": tuned["base"], "writer": tuned["writer"],
                     "MNIST before": meter.mnist_before, "MNIST after": meter.mnist_after,
                     "held-out before": meter.heldout_before, "held-out after": meter.heldout_after,
                     "held-out digits": meter.heldout_digits, "note": tuned.get("note") or ""})
    if not rows:
        return
    st.markdown("**Forgetting meter** — MNIST test accuracy and the writer's held-out accuracy, before → after")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", placeholder="—",
                 column_config={key: PERCENT for key in rows[0] if "before" in key or "after" in key})


def finetune_settings_line(config: dict) -> str:
    """e.g. ``cnn fine-tuned on anna's digits · 6 epochs · batch 64 · adam, rate 0.0003 · 8 copies …``."""
    return " · ".join([f"{config['base']} fine-tuned on {whose(config['writer'])} digits",
                       counted(config["epochs"], "epoch"),
                       f"batch {config['batch_size']}", f"{config['optimizer']}, rate {config['learning_rate']:g}",
                       f"{config['copies']} distorted copies per drawing", f"MNIST replay ×{config['replay_ratio']:g}",
                       f"{config['holdout_fraction']:.0%} held out", f"seed {config['seed']}"])
