"""Train: pick an architecture and settings, queue a run, watch its curves grow, stop it.

Start puts the run on the store's queue (:mod:`digitlab.jobs.queue`); the server's executor
(:func:`~digitlab.jobs.executor.executor_from_environment`: child processes here, or a Ray
cluster) runs the CLI's own ``train_and_store`` when its turn comes. This page only collects
settings and draws the queue, in a fragment that refreshes itself, so reruns, page switches,
reloads, other visitors and other servers over the same store all see the same runs. Only the
session that started a run (its owner token is kept in the page's address, so a reload keeps it)
can stop it.
"""

from __future__ import annotations

import math
import secrets
import time

import altair as alt
import pandas as pd
import streamlit as st

from app_pages.common import (
    NO_DATA_MESSAGE,
    WATCH_KEY,
    counted,
    for_visitors,
    get_store,
    list_models,
    logged_for_visitors,
    mnist_path,
    mnist_training_set_size,
    show_outcome,
)
from app_pages.finetune_section import finetune_settings_line, finetune_ui
from app_pages.sweeps import sweep_results_ui
from app_pages.watch_section import current_pins, pins_ui, watch_chart_ui
from digitlab.config import MAX_EPOCHS, MAX_SEED, OPTIMIZERS, SCHEDULES, SPECS, TrainConfig, whole_number
from digitlab.data import DataNotFoundError
from digitlab.jobs.executor import QueueExecutor, executor_from_environment
from digitlab.jobs.queue import QueuedRun, RunQueue, RunRequest
from digitlab.jobs.sweep import parse_values, sweep_requests
from digitlab.report import comparison_row, learning_curve_rows
from digitlab.store import StoreError

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
OWNER_KEY = "train_owner"
STATUS_TEXT = {
    "queued": ":material/schedule: Waiting in the queue",
    "starting": ":material/hourglass_top: Starting the training process (loading TensorFlow)…",
    "running": ":material/model_training: Training",
    "stopping": ":material/stop_circle: Stopping after the current batch…",
}
QUEUE_COLUMNS = {
    "status": st.column_config.TextColumn(width=140),  # "stopped-discarded" whole, in any font
    "val accuracy": st.column_config.NumberColumn(format="percent"),
    "submitted": st.column_config.TimeColumn(format="HH:mm:ss"),
    "started": st.column_config.TimeColumn(format="HH:mm:ss"),
    "finished": st.column_config.TimeColumn(format="HH:mm:ss"),
}
QUEUE_ROWS = 12


@st.cache_resource(show_spinner=False)
def get_executor(models_dir: str) -> QueueExecutor:
    """The server's executor for this store (started once, shared by every session)."""
    return executor_from_environment(RunQueue(models_dir), data_path=mnist_path()).start()


def owner_token() -> str:
    """This visitor's owner token: kept in the session and in the page address (a reload keeps it)."""
    state = st.session_state
    if OWNER_KEY not in state:
        given = st.query_params.get("owner", "")
        state[OWNER_KEY] = given if given.isalnum() and 8 <= len(given) <= 64 else secrets.token_hex(8)
    if st.query_params.get("owner") != state[OWNER_KEY]:
        st.query_params["owner"] = state[OWNER_KEY]
    return state[OWNER_KEY]


def owner_label(token: str) -> str:
    """What other visitors see as the owner of this visitor's runs."""
    return f"visitor {token[:4]}"


def render() -> None:
    st.title(":material/model_training: Train a model")
    st.caption("Runs wait in one queue and train in their own processes: you can switch pages, close "
               "the tab or come back later — the run goes on, and this page shows every run to everyone. "
               "Only the visitor who started a run can stop it.")
    try:
        executor = get_executor(str(get_store().root))
    except (ConnectionError, ValueError) as error:  # $DIGITLAB_RAY_ADDRESS or $DIGITLAB_CONCURRENT_RUNS
        st.error(f"Training is not available on this server: {error}", icon=":material/error:")
        return
    owner_token()
    settings_ui(executor)
    sweep_ui()
    pins_ui()
    show_outcome(st.session_state.pop(FEEDBACK_KEY, None))
    queue_fragment(executor)
    owner = owner_token()
    finetune_ui(executor, owner, owner_label(owner))


# -- settings --------------------------------------------------------------------------------
def settings_ui(executor: QueueExecutor) -> None:
    """The architecture picker and the settings form; Start launches the run in a callback."""
    names = list(SPECS)
    arch = st.selectbox("Architecture", names, index=names.index("mlp"), key="train_arch",
                        format_func=lambda name: f"{name} — {SPECS[name].description}",
                        help="Ours (mlp, lenet, cnn) and the tutorials' exact recipes. Changing it "
                             "loads its recipe into the settings below.")
    recipe = SPECS[arch].recipe
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
        teachers, weight = st.columns([2, 1])
        teachers.multiselect("Learn from (teachers)", [entry.name for entry in list_models() if entry.usable],
                             key=f"train_teachers_{arch}", placeholder="no teachers: the labels alone",
                             help="Knowledge distillation: each target blends the digit's label with these "
                                  "models' averaged answer for the picture as distorted. Several good models "
                                  "averaged are steadier across writers and pens than any one of them.")
        weight.slider("Teachers' share of each target", 0.1, 1.0, value=0.5, step=0.1,
                      key=f"train_teacher_weight_{arch}", help="The label takes the rest.")
        name_key = f"train_name_{arch}"
        if name_key not in st.session_state:
            st.session_state[name_key] = suggest_name(arch, executor)
        st.text_input("Model name", key=name_key, max_chars=40,
                      help="Letters, digits, '-' and '_'; not the name of a model in the store.")
        st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:", key="train_start",
                              on_click=start_clicked, args=(executor, arch))
        sweep_button(executor, arch)


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
        teachers=list(state.get(f"train_teachers_{arch}") or []),
        teacher_weight=round(float(state.get(f"train_teacher_weight_{arch}", 0.5)), 2),
    )


def start_clicked(executor: QueueExecutor, arch: str) -> None:
    """Validate and queue; the outcome is shown once, above the queue (callbacks cannot draw)."""
    name_key = f"train_name_{arch}"
    owner = owner_token()
    try:
        request = RunRequest(read_config(arch), st.session_state[name_key].strip(), watch=current_pins())
        [run] = executor.queue.submit([request], owner, data_size=mnist_training_set_size(),
                                      executor=executor.kind, owner_label=owner_label(owner))
    except DataNotFoundError as error:  # before ValueError: the server's setup, not the settings
        logged_for_visitors(error, "a run could not start")
        st.session_state[FEEDBACK_KEY] = ("error", f"Not started: {NO_DATA_MESSAGE}")
        return
    except StoreError as error:
        logged_for_visitors(error, "a run could not start")
        st.session_state[FEEDBACK_KEY] = ("error", f"Not started: {STORE_UNAVAILABLE}")
        return
    except ValueError as error:
        st.session_state[FEEDBACK_KEY] = ("error", f"Not started: {for_visitors(str(error))}")
        return
    executor.wake()
    st.session_state[FEEDBACK_KEY] = ("success", f"Queued {run.name!r}: number {run.position} in the queue.")
    st.session_state[name_key] = suggest_name(arch, executor)
    st.session_state[WATCH_KEY] = run.id


def suggest_name(arch: str, executor: QueueExecutor) -> str:
    """``my-<arch>``, ``my-<arch>-2``, … : the first name not in the store and not waiting or going."""
    taken = {entry.name.lower() for entry in list_models()}  # names differing only in case clash
    taken |= {run.name.lower() for run in executor.queue.runs() if run.active or run.status == "queued"}
    base = f"my-{arch.replace('_', '-')}"
    candidates = (base if number == 1 else f"{base}-{number}" for number in range(1, 1000))
    return next(name for name in candidates if name not in taken)


# -- sweeps ---------------------------------------------------------------------------------
def sweep_button(executor: QueueExecutor, arch: str) -> None:
    """The settings form's second submit button: the form's values, varied as the sweep says."""
    st.form_submit_button("Queue a sweep of these settings", icon=":material/stacks:", key="sweep_start",
                          on_click=sweep_clicked, args=(executor, arch),
                          help="Every optimizer × learning rate chosen under **Sweep** below.")


def sweep_ui() -> None:
    """What a sweep varies: every optimizer × learning rate given (widgets outside the form)."""
    with st.expander("Sweep: train several variants of these settings", icon=":material/stacks:"):
        rates, optimizers = st.columns(2)
        rates.text_input("Learning rates", value="1e-3,3e-3", key="sweep_rates",
                         help="Comma-separated; each is trained with each optimizer.")
        optimizers.multiselect("Optimizers", OPTIMIZERS, default=["adam", "sgd"], key="sweep_optimizers")
        st.caption("The variants are named after the model name above plus what varies "
                   "(e.g. `my-mlp-adam-lr1e-3`); on a Ray cluster they train side by side, here one after "
                   "another. Press **Queue a sweep of these settings** in the form above.")


def sweep_clicked(executor: QueueExecutor, arch: str) -> None:
    """Queue every variant in one transaction (all or none); the outcome is shown above the queue."""
    owner = owner_token()
    prefix = st.session_state[f"train_name_{arch}"].strip()
    try:
        optimizers = list(st.session_state["sweep_optimizers"])
        if not optimizers:
            raise ValueError("pick at least one optimizer")
        requests = sweep_requests(read_config(arch), prefix, optimizers=optimizers,
                                  learning_rates=parse_values(st.session_state["sweep_rates"], float, "learning rate"),
                                  watch=current_pins())
        runs = executor.queue.submit(requests, owner, data_size=mnist_training_set_size(), executor=executor.kind,
                                     owner_label=owner_label(owner), sweep=prefix)
    except (ValueError, DataNotFoundError) as error:
        st.session_state[FEEDBACK_KEY] = ("error", f"Sweep not started: {error}")
        return
    executor.wake()
    st.session_state[FEEDBACK_KEY] = ("success", f"Queued a sweep of {len(runs)} runs: "
                                      + ", ".join(run.name for run in runs) + ".")
    st.session_state[f"train_name_{arch}"] = suggest_name(arch, executor)
    st.session_state[WATCH_KEY] = runs[0].id


# -- the queue and the run watched ------------------------------------------------------------
@st.fragment(run_every=REFRESH_SECONDS)
def queue_fragment(executor: QueueExecutor) -> None:
    """The queue and one run of it, redrawn every couple of seconds without rerunning the page."""
    runs = executor.queue.runs(limit=QUEUE_ROWS)
    if not runs:
        st.caption("No runs yet on this store. Pick the settings above and press **Start training**.")
        return
    owner = owner_token()
    queue_table(runs, owner)
    run = watched_run(runs, owner)
    if run.sweep:
        sweep_results_ui(executor.queue.sweep_runs(run.sweep), key="train_sweep_table")
    st.subheader(f"Run: {run.name}")
    st.caption(f"{settings_line(run.config)} · started by {who(run, owner)}")
    if run.status == "queued":
        st.markdown(f"{STATUS_TEXT['queued']}: number **{run.position}**.")
        stop_buttons(executor, run, owner)
        return
    if run.active:
        progress_ui(executor, run, owner)
    curves_ui(run)
    watch_chart_ui(run)
    if not run.active:
        outcome_ui(run)


def queue_table(runs: list[QueuedRun], owner: str) -> None:
    """Every waiting and going run, then the latest finished ones, with their owners."""
    rows = [{"run": run.id, "model": run.name,
             "architecture": run.config["architecture"], "status": run.status,
             "place": run.position, "started by": who(run, owner),
             "val accuracy": run.val_accuracy, "submitted": _clock(run.submitted_at),
             "started": _clock(run.started_at), "finished": _clock(run.finished_at)} for run in runs]
    waiting = sum(run.status == "queued" for run in runs)
    going = sum(run.active for run in runs)
    st.markdown(f"**Queue** — {going} going, {waiting} waiting")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", placeholder="—", column_config=QUEUE_COLUMNS,
                 key="train_queue_table")


def watched_run(runs: list[QueuedRun], owner: str) -> QueuedRun:
    """The run picked to watch: by default this visitor's latest, else the first going or waiting."""
    by_id = {run.id: run for run in runs}
    mine = [run for run in runs if run.owner == owner]
    default = (mine or [run for run in runs if run.active] or runs)[0 if not mine else -1]
    if st.session_state.get(WATCH_KEY) not in by_id:
        st.session_state[WATCH_KEY] = default.id
    chosen = st.selectbox("Watch run", list(by_id), key=WATCH_KEY,
                          format_func=lambda run_id: f"{run_id} · {by_id[run_id].name} · {by_id[run_id].status}")
    return by_id[chosen]


def who(run: QueuedRun, owner: str) -> str:
    """``you``, or the owner's label (a visitor's short tag, ``cli:user@host``)."""
    return "you" if run.owner == owner else run.owner_label


def _clock(timestamp: float | None):
    return None if timestamp is None else time.strftime("%H:%M:%S", time.localtime(timestamp))


def settings_line(config: dict) -> str:
    """e.g. ``mlp · 5 epochs · batch 128 · adam, rate 0.001, cosine · augmented · 10,000 images``."""
    if "base" in config:  # a fine-tuning run
        return finetune_settings_line(config)
    parts = [config["architecture"], counted(config["epochs"], "epoch"), f"batch {config['batch_size']}",
             f"{config['optimizer']}, rate {config['learning_rate']:g}, {config['schedule']}",
             "augmented" if config.get("augment") else "no augmentation",
             f"{config.get('train_size') or 60000:,} images, {config['validation_fraction']:.0%} validation",
             f"seed {config['seed']}"]
    if config.get("teachers"):
        parts.append(f"taught by {', '.join(config['teachers'])} ({config.get('teacher_weight', 0.5):.0%})")
    if config.get("weight_average"):
        parts.append(f"weights averaged (momentum {config['weight_average']:g})")
    return " · ".join(parts)


def progress_ui(executor: QueueExecutor, run: QueuedRun, owner: str) -> None:
    """Status, progress bar with batch/epoch/ETA, and (for its owner) the two Stop buttons."""
    st.markdown(STATUS_TEXT[run.status])
    latest = run.latest()
    if latest is None or latest.batches == 0:
        st.progress(0.0, text="Waiting for the first batch…")
    else:
        epoch = max(latest.epoch, 1)
        st.progress(latest.fraction_done, text=f"batch {latest.batch}/{latest.batches} of epoch "
                    f"{epoch}/{latest.epochs} — ETA {format_seconds(latest.eta)}")
    stop_buttons(executor, run, owner)


def stop_buttons(executor: QueueExecutor, run: QueuedRun, owner: str) -> None:
    """Stop (keep / discard) for the run's owner; a waiting run is simply taken off the queue."""
    if run.owner != owner:
        st.caption(f"Only {run.owner_label}, who started this run, can stop it.")
        return
    stopping = not run.can_stop(owner)
    with st.container(horizontal=True):
        if run.status == "queued":
            st.button("Take off the queue", icon=":material/delete:", key="train_cancel",
                      on_click=stop_clicked, args=(executor, run.id, False))
            return
        st.button("Stop, keep the best epoch", icon=":material/save:", key="train_stop_keep", disabled=stopping,
                  on_click=stop_clicked, args=(executor, run.id, True),
                  help="Ends after the current batch and stores the best finished epoch as the model.")
        st.button("Stop and discard", icon=":material/delete:", key="train_stop_discard", disabled=stopping,
                  on_click=stop_clicked, args=(executor, run.id, False),
                  help="Ends after the current batch; nothing is stored.")


def stop_clicked(executor: QueueExecutor, run_id: int, keep: bool) -> None:
    """Ask the queue to stop the run (it checks the owner); the executor holding it acts at once."""
    try:
        executor.queue.request_stop(run_id, owner_token(), keep=keep)
    except (PermissionError, ValueError) as error:
        st.session_state[FEEDBACK_KEY] = ("error", f"Not stopped: {error}")
        return
    executor.wake()


def curves_ui(snapshot: QueuedRun) -> None:
    """Loss and accuracy per finished epoch, training vs validation, on a fixed epoch axis."""
    rows = learning_curve_rows({snapshot.name: snapshot.history})
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
    seconds = snapshot.epochs[-1]["elapsed"] / finished
    summary = [f"Epoch {finished}/{epochs} finished", f"loss {last['loss']:.4f}", f"accuracy {last['accuracy']:.2%}"]
    if "val_accuracy" in last:
        summary += [f"validation loss {last['val_loss']:.4f}", f"validation accuracy {last['val_accuracy']:.2%}"]
    st.caption(" · ".join(summary) + f" · {seconds:.1f} s per epoch")


def outcome_ui(snapshot: QueuedRun) -> None:
    """How the run ended; a stored model is compared with the shipped ones."""
    card = snapshot.card
    if snapshot.status == "failed":
        st.error(f"The run failed: {for_visitors(snapshot.error or 'unknown error')}. Nothing was saved.",
                 icon=":material/error:")
    elif snapshot.status == "interrupted":
        st.warning(f"Interrupted: {for_visitors(snapshot.error or 'the server stopped')}.", icon=":material/warning:")
    elif snapshot.status == "cancelled":
        st.info("Taken off the queue before it started.", icon=":material/delete:")
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
    rows = [comparison_row(entry.name, entry.run) for entry in entries]
    columns = ["model", "architecture", "test accuracy", "test loss", "parameters", "epochs", "training s"]
    frame = pd.DataFrame(rows, columns=columns)
    if not any(entry.shipped for entry in entries):
        st.caption("No shipped models in this store to compare with.")
    st.dataframe(frame, hide_index=True, width="stretch", placeholder="—", column_config=TEST_COLUMNS)


def format_seconds(seconds: float | None) -> str:
    """``42 s``, ``3 min 05 s``, or ``…`` while unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "…"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


render()
