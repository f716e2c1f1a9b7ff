"""Train: pick an architecture and settings, start a run, watch its curves grow, stop it.

The run is a :class:`digitlab.jobs.TrainingJob` — a child process running the CLI's own
``train_and_store`` — held by one :class:`~digitlab.jobs.JobRegistry` per server. This page only
collects settings and draws the job's snapshot, in a fragment that refreshes itself, so reruns,
page switches, closed tabs and other visitors never touch the run.
"""

from __future__ import annotations

import math

import altair as alt
import pandas as pd
import streamlit as st

from app_pages.common import (
    NO_DATA_MESSAGE,
    for_visitors,
    get_store,
    list_models,
    logged_for_visitors,
    mnist_path,
    mnist_training_set_size,
)
from digitlab.architectures import ARCHITECTURES
from digitlab.data import DataNotFoundError
from digitlab.jobs.locking import JobBusyError, describe_holder
from digitlab.jobs.registry import JobRegistry, JobSnapshot
from digitlab.report import comparison_row, learning_curve_rows
from digitlab.store import StoreError
from digitlab.training import MAX_EPOCHS, MAX_SEED, OPTIMIZERS, SCHEDULES, TrainConfig, whole_number

REFRESH_SECONDS = 2  # faster refreshes cost the web process a rerun each; 2 s reads as live
QUICK_EPOCHS = 5
QUICK_TRAIN_SIZE = 10_000
FEEDBACK_KEY = "train_feedback"
STORE_UNAVAILABLE = "this server cannot store new models right now (its log says why)."
# Whole numbers are typed as text and read exactly: a browser's number box turns "2.5" into 2,
# "1e30" into 1 and drops "NaN" (keeping the default) without a word.
WHOLE_SETTINGS = {"epochs": "Epochs", "batch": "Batch size", "size": "Training-set size", "seed": "Seed"}
TEST_COLUMNS = {
    "test accuracy": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0),
    "test loss": st.column_config.NumberColumn(format="%.4f"),
    "parameters": st.column_config.NumberColumn(format="localized"),
    "training s": st.column_config.NumberColumn(format="%.0f"),
}
STATUS_TEXT = {
    "starting": ":material/hourglass_top: Starting the training process (loading TensorFlow)…",
    "running": ":material/model_training: Training",
    "stopping": ":material/stop_circle: Stopping after the current batch…",
}


@st.cache_resource(show_spinner=False)
def get_registry(models_dir: str) -> JobRegistry:
    """The server's one job registry for this store, shared by every session."""
    return JobRegistry(models_dir, data_path=mnist_path(),
                       training_set_size=mnist_training_set_size)


def render() -> None:
    st.title(":material/model_training: Train a model")
    st.caption("Training runs in its own process on this machine: you can switch pages, close the "
               "tab or come back later — the run goes on, and this page shows it to everyone.")
    registry = get_registry(str(get_store().root))
    settings_ui(registry)
    feedback = st.session_state.pop(FEEDBACK_KEY, None)
    if feedback:
        kind, text = feedback
        getattr(st, kind)(text)
    job_fragment(registry)


# -- settings --------------------------------------------------------------------------------
def settings_ui(registry: JobRegistry) -> None:
    """The architecture picker and the settings form; Start launches the run in a callback."""
    names = list(ARCHITECTURES)
    arch = st.selectbox("Architecture", names, index=names.index("mlp"), key="train_arch",
                        format_func=lambda name: f"{name} — {ARCHITECTURES[name].description}",
                        help="Ours (mlp, lenet, cnn) and the tutorials' exact recipes. Changing it "
                             "loads its recipe into the settings below.")
    recipe = ARCHITECTURES[arch].recipe
    with st.form("train_settings", border=True):
        epochs, batch, size = st.columns(3)
        epochs.text_input("Epochs", value=str(min(recipe.epochs, QUICK_EPOCHS)), key=f"train_epochs_{arch}",
                          max_chars=12, help=f"1–{MAX_EPOCHS}. The recipe trains {recipe.epochs} epochs on all "
                                             "60,000 images.")
        batch.text_input("Batch size", value=str(recipe.batch_size), key=f"train_batch_{arch}", max_chars=12,
                         help="Images per training step, at least 1.")
        size.text_input("Training-set size", value=str(QUICK_TRAIN_SIZE), key=f"train_size_{arch}", max_chars=12,
                        help="Train on the first N (at least 100) of MNIST's 60,000 training images: "
                             "fewer is quicker. The validation split is taken from these.")
        optimizer, rate, schedule = st.columns(3)
        optimizer.selectbox("Optimizer", OPTIMIZERS, index=OPTIMIZERS.index(recipe.optimizer),
                            key=f"train_optimizer_{arch}")
        rate.text_input("Learning rate", value=f"{recipe.learning_rate:g}", key=f"train_rate_{arch}")
        schedule.selectbox("Schedule", SCHEDULES, index=SCHEDULES.index(recipe.schedule),
                           key=f"train_schedule_{arch}", help="cosine: the rate decays to 1 % by the end.")
        validation, augment, seed = st.columns(3)
        validation.slider("Validation fraction", 0.0, 0.5, value=recipe.validation_fraction, step=0.05,
                          key=f"train_validation_{arch}",
                          help="Held out from the training images to plot validation curves and pick "
                               "the best epoch. 0 = no validation curves.")
        augment.toggle("Augmentation", value=recipe.augment, key=f"train_augment_{arch}",
                       help="Random shifts, rotations, zooms and stroke widths, new every epoch.")
        seed.text_input("Seed", value="0", key=f"train_seed_{arch}", max_chars=12,
                        help=f"0–{MAX_SEED}. The same settings and seed give the same model as the command line.")
        name_key = f"train_name_{arch}"
        if name_key not in st.session_state:
            st.session_state[name_key] = suggest_name(arch, registry)
        st.text_input("Model name", key=name_key, max_chars=40,
                      help="Letters, digits, '-' and '_'; not the name of a model in the store.")
        st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:", key="train_start",
                              on_click=start_clicked, args=(registry, arch))


def read_config(arch: str) -> TrainConfig:
    """The settings form's values as a config; raises ``ValueError`` for an unreadable number."""
    state = st.session_state
    text = str(state[f"train_rate_{arch}"]).strip()
    try:
        learning_rate = float(text)
    except ValueError:
        raise ValueError(f"learning rate {text!r} is not a number; write e.g. 0.001 or 1e-3") from None
    whole = {field: whole_number(state[f"train_{field}_{arch}"], label.lower())
             for field, label in WHOLE_SETTINGS.items()}
    return TrainConfig(
        architecture=arch, epochs=whole["epochs"], batch_size=whole["batch"],
        optimizer=state[f"train_optimizer_{arch}"], learning_rate=learning_rate,
        schedule=state[f"train_schedule_{arch}"], augment=bool(state[f"train_augment_{arch}"]),
        validation_fraction=round(float(state[f"train_validation_{arch}"]), 2),  # slider steps drift
        train_size=whole["size"], seed=whole["seed"],
    )


def start_clicked(registry: JobRegistry, arch: str) -> None:
    """Validate and start; the outcome is shown once, above the run (callbacks cannot draw)."""
    name_key = f"train_name_{arch}"
    try:
        job = registry.start(read_config(arch), st.session_state[name_key].strip())
    except JobBusyError as busy:
        text = str(busy) if busy.job is None else (
            f"a run is already going ({busy.job.name!r}): one training run at a time on this machine. "
            "Its progress is below")
        st.session_state[FEEDBACK_KEY] = ("warning", f"Not started: {text}.")
    except DataNotFoundError as error:  # before ValueError: the server's setup, not the settings
        logged_for_visitors(error, "a run could not start")
        st.session_state[FEEDBACK_KEY] = ("error", f"Not started: {NO_DATA_MESSAGE}")
    except StoreError as error:
        logged_for_visitors(error, "a run could not start")
        st.session_state[FEEDBACK_KEY] = ("error", f"Not started: {STORE_UNAVAILABLE}")
    except ValueError as error:
        st.session_state[FEEDBACK_KEY] = ("error", f"Not started: {for_visitors(str(error))}")
    else:
        st.session_state[FEEDBACK_KEY] = ("success", f"Started training {job.name!r}.")
        st.session_state[name_key] = suggest_name(arch, registry)


def suggest_name(arch: str, registry: JobRegistry) -> str:
    """``my-<arch>``, ``my-<arch>-2``, … : the first name not in the store and not being trained."""
    taken = {entry.name.lower() for entry in list_models()}  # names differing only in case clash
    snapshot = registry.snapshot()
    if snapshot is not None:
        taken.add(snapshot.name.lower())
    base = f"my-{arch.replace('_', '-')}"
    candidates = (base if number == 1 else f"{base}-{number}" for number in range(1, 1000))
    return next(name for name in candidates if name not in taken)


# -- the run ---------------------------------------------------------------------------------
@st.fragment(run_every=REFRESH_SECONDS)
def job_fragment(registry: JobRegistry) -> None:
    """The current run, redrawn every couple of seconds without rerunning the page."""
    holder = registry.elsewhere()
    if holder is not None:
        st.info(f"{sentence(describe_holder(holder))}.", icon=":material/lock_clock:")
    snapshot = registry.snapshot()
    if snapshot is None:
        if holder is None:
            st.caption("No run yet on this server. Pick the settings above and press **Start training**.")
        return
    st.subheader(f"Run: {snapshot.name}")
    st.caption(settings_line(snapshot.config))
    if snapshot.active:
        progress_ui(registry, snapshot)
    curves_ui(snapshot)
    if not snapshot.active:
        outcome_ui(snapshot)


def settings_line(config: dict) -> str:
    """e.g. ``mlp · 5 epochs · batch 128 · adam, rate 0.001, cosine · augmented · 10,000 images``."""
    parts = [config["architecture"], f"{config['epochs']} epochs", f"batch {config['batch_size']}",
             f"{config['optimizer']}, rate {config['learning_rate']:g}, {config['schedule']}",
             "augmented" if config.get("augment") else "no augmentation",
             f"{config.get('train_size') or 60000:,} images, {config['validation_fraction']:.0%} validation",
             f"seed {config['seed']}"]
    return " · ".join(parts)


def progress_ui(registry: JobRegistry, snapshot: JobSnapshot) -> None:
    """Status, progress bar with batch/epoch/ETA, and the two Stop buttons."""
    st.markdown(STATUS_TEXT[snapshot.status])
    latest = snapshot.latest
    if latest is None or latest.batches == 0:
        st.progress(0.0, text="Waiting for the first batch…")
    else:
        epoch = max(latest.epoch, 1)
        st.progress(latest.fraction_done, text=f"batch {latest.batch}/{latest.batches} of epoch "
                    f"{epoch}/{latest.epochs} — ETA {format_seconds(latest.eta)}")
    job = registry.job
    stopping = snapshot.stop_requested is not None
    with st.container(horizontal=True):
        st.button("Stop, keep the best epoch", icon=":material/save:", key="train_stop_keep", disabled=stopping,
                  on_click=job.stop, kwargs={"keep": True},
                  help="Ends after the current batch and stores the best finished epoch as the model.")
        st.button("Stop and discard", icon=":material/delete:", key="train_stop_discard", disabled=stopping,
                  on_click=job.stop, kwargs={"keep": False},
                  help="Ends after the current batch; nothing is stored.")


def curves_ui(snapshot: JobSnapshot) -> None:
    """Loss and accuracy per finished epoch, training vs validation, on a fixed epoch axis."""
    rows = learning_curve_rows({snapshot.name: {"history": snapshot.history}})
    finished = len(snapshot.epochs)
    if not rows:
        if snapshot.active:
            st.caption("The curves appear when the first epoch finishes.")
        return
    frame = pd.DataFrame(rows)
    epochs = snapshot.config["epochs"]
    loss_column, accuracy_column = st.columns(2)
    for column, metric in ((loss_column, "loss"), (accuracy_column, "accuracy")):
        chart = alt.Chart(frame[frame.metric == metric], height=260, title=metric).mark_line(point=True).encode(
            x=alt.X("epoch:Q", scale=alt.Scale(domain=[1, max(epochs, 2)]), axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
            color=alt.Color("split:N", sort=["train", "validation"], legend=alt.Legend(orient="bottom")),
            tooltip=["epoch", "split", alt.Tooltip("value:Q", format=".4f")],
        )
        column.altair_chart(chart, width="stretch")
    last = snapshot.history[-1]
    seconds = snapshot.epochs[-1].elapsed / finished
    summary = [f"Epoch {finished}/{epochs} finished", f"loss {last['loss']:.4f}", f"accuracy {last['accuracy']:.2%}"]
    if "val_accuracy" in last:
        summary += [f"validation loss {last['val_loss']:.4f}", f"validation accuracy {last['val_accuracy']:.2%}"]
    st.caption(" · ".join(summary) + f" · {seconds:.1f} s per epoch")


def outcome_ui(snapshot: JobSnapshot) -> None:
    """How the run ended; a stored model is compared with the shipped ones."""
    card = snapshot.card
    if snapshot.status == "failed":
        st.error(f"The run failed: {for_visitors(snapshot.error or 'unknown error')}. Nothing was saved.",
                 icon=":material/error:")
    elif snapshot.status == "stopped-discarded":
        note = f" ({for_visitors(snapshot.error)})" if snapshot.error else ""
        st.info(f"Stopped and discarded{note}: the store is unchanged.", icon=":material/delete:")
    else:
        how = (f"Stopped after {card['epochs_run']} epoch(s); kept epoch {card['best_epoch']}"
               if snapshot.status == "stopped-kept" else f"Finished {card['epochs_run']} epoch(s)")
        st.success(f"{how}: **{snapshot.name}** is in the store with **{card['test_accuracy']:.2%}** test "
                   "accuracy. Pick it on the **Draw** page or compare it on **Evaluate**.",
                   icon=":material/check_circle:")
        comparison_ui(snapshot.name)


def comparison_ui(name: str) -> None:
    """The new model's test results next to the shipped models', from the store's cards."""
    entries = [entry for entry in list_models() if entry.usable and (entry.shipped or entry.name == name)]
    rows = [comparison_row(entry.name, entry.card) for entry in entries]
    columns = ["model", "architecture", "test accuracy", "test loss", "parameters", "epochs", "training s"]
    frame = pd.DataFrame(rows, columns=columns)
    if not any(entry.shipped for entry in entries):
        st.caption("No shipped models in this store to compare with.")
    st.dataframe(frame, hide_index=True, width="stretch", column_config=TEST_COLUMNS)


def sentence(text: str) -> str:
    """``text`` with a capital first letter (the package's messages start in lower case)."""
    return text[:1].upper() + text[1:]


def format_seconds(seconds: float | None) -> str:
    """``42 s``, ``3 min 05 s``, or ``…`` while unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "…"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


render()
