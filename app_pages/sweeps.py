"""A sweep's variants side by side: their validation curves overlaid and their ranking.

The Train page shows the sweep of the run being watched; the Evaluate page lets a person pick any
sweep trained on this store.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from digitlab.jobs.queue import QUEUE_FILE, QueuedRun, RunQueue
from digitlab.jobs.sweep import ranked


def sweep_results_ui(runs: list[QueuedRun], key: str) -> None:
    """A sweep's variants: validation accuracy per epoch overlaid, and ranked by its best value."""
    st.markdown(f"**Sweep {runs[0].sweep}** — {len(runs)} variants, ranked by validation accuracy")
    rows = [{"run": run.name, "epoch": row["epoch"], "validation accuracy": row["val_accuracy"]}
            for run in runs for row in run.history if "val_accuracy" in row]
    if rows:
        chart = alt.Chart(pd.DataFrame(rows), height=260).mark_line(point=True).encode(
            x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("validation accuracy:Q", scale=alt.Scale(zero=False), axis=alt.Axis(format="%")),
            color=alt.Color("run:N", legend=alt.Legend(orient="bottom")),
            tooltip=["run", "epoch", alt.Tooltip("validation accuracy:Q", format=".2%")])
        st.altair_chart(chart, width="stretch")
    table = [{"rank": rank, "model": run.name, "optimizer": run.config["optimizer"],
              "learning rate": f"{run.config['learning_rate']:g}", "status": run.status,
              "val accuracy": run.val_accuracy, "test accuracy": (run.card or {}).get("test_accuracy")}
             for rank, run in enumerate(ranked(runs), start=1)]
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch", placeholder="—", key=key,
                 column_config={"val accuracy": st.column_config.NumberColumn(format="percent"),
                                "test accuracy": st.column_config.NumberColumn(format="percent")})


def sweeps_ui(store_root) -> None:
    """The Evaluate page's section: every sweep queued on this store, one at a time."""
    queue = RunQueue(store_root)
    if not (queue.models_dir / QUEUE_FILE).exists():  # nothing was ever queued here: no file to make
        return
    sweeps = list(dict.fromkeys(run.sweep for run in queue.runs() if run.sweep))
    if not sweeps:
        return
    st.subheader(":material/stacks: Sweeps")
    st.caption("Variants of one recipe trained side by side (a sweep from the Train page or "
               "`digitlab sweep`), ranked by their best validation accuracy: the test set picks nothing.")
    chosen = st.selectbox("Sweep", sweeps, key="evaluate_sweep") if len(sweeps) > 1 else sweeps[0]
    sweep_results_ui(queue.sweep_runs(chosen), key="evaluate_sweep_table")
