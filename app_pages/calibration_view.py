"""The Evaluate page's "Honest confidence" section: ECE before and after, reliability diagrams.

Everything shown comes from the run cards (``digitlab.calibration`` computed it when the model was
trained or calibrated); nothing is measured here.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

SET_TITLES = {"mnist": "MNIST test", "uci": "UCI digits"}


def calibration_ui(usable) -> None:
    """ECE per model and test set, and one model's reliability diagrams, raw and calibrated."""
    st.subheader("Honest confidence")
    st.caption("When a model says 90 %, is it right nine times in ten? Each model's probabilities "
               "are divided by one temperature, fitted on the images its training run held out, so "
               "that its confidence matches its accuracy; the answers themselves do not change. "
               "ECE (expected calibration error) is the average gap between confidence and accuracy.")
    calibrations = {entry.name: entry.run.calibration for entry in usable}
    missing = [name for name, calibration in calibrations.items() if calibration is None]
    if missing:
        st.info(f"No temperature fitted yet for {', '.join(missing)}: run "
                f"`python -m digitlab calibrate {' '.join(missing)}`.")
    fitted = {name: calibration for name, calibration in calibrations.items() if calibration is not None}
    if not fitted:
        return
    st.dataframe(pd.DataFrame(_ece_rows(fitted)), hide_index=True, width="stretch", placeholder="—", column_config={
        "ECE before": st.column_config.NumberColumn(format="%.2f %%"),
        "ECE after": st.column_config.NumberColumn(format="%.2f %%"),
        "temperature": st.column_config.NumberColumn(format="%.3f"),
        "not sure at or under": st.column_config.NumberColumn(
            format="%.1f %%", help="Calibrated confidence at or under which this model's answers were "
                                   "wrong more often than right (validation split and UCI digits)."),
    })
    name = st.selectbox("Reliability diagrams of", list(fitted), key="evaluate_calibration_model")
    columns = st.columns(len(fitted[name].sets))
    for column, (key, result) in zip(columns, fitted[name].sets.items(), strict=True):
        column.altair_chart(reliability_chart(result, SET_TITLES.get(key, key)), width="stretch")
    st.caption("Grey bars: the share of right answers among those given with that raw confidence; red "
               "line: the same after temperature scaling. The dashed diagonal is perfect honesty: under "
               "it a model is over-confident, above it timid.")


def _ece_rows(fitted) -> list[dict]:
    return [{"model": name, "test set": SET_TITLES.get(key, key), "images": result.samples,
             "temperature": calibration.temperature, "ECE before": result.ece_before * 100,
             "ECE after": result.ece_after * 100, "not sure at or under": calibration.not_sure_below * 100}
            for name, calibration in fitted.items() for key, result in calibration.sets.items()]


def reliability_chart(result, title: str) -> alt.LayerChart:
    """Accuracy per confidence bin: raw as bars, calibrated as a line, over the diagonal of honesty."""
    rows = [{"lower": row.lower, "upper": row.upper, "centre": (row.lower + row.upper) / 2,
             "accuracy": row.accuracy, "answers": row.count, "scaling": scaling}
            for scaling, bins in (("raw", result.bins_before), ("calibrated", result.bins_after))
            for row in bins if row.count]
    frame = pd.DataFrame(rows)
    x_scale, y_scale = alt.Scale(domain=[0, 1]), alt.Scale(domain=[0, 1])
    tooltip = ["scaling", alt.Tooltip("centre:Q", title="confidence", format=".2f"),
               alt.Tooltip("accuracy:Q", format=".1%"), "answers"]
    bars = alt.Chart(frame[frame.scaling == "raw"]).mark_bar(opacity=0.55, color="#8a94a6").encode(
        x=alt.X("lower:Q", scale=x_scale, title="confidence"), x2="upper:Q",
        y=alt.Y("accuracy:Q", scale=y_scale, stack=None, axis=alt.Axis(format="%"), title="accuracy"),
        y2=alt.datum(0), tooltip=tooltip)
    calibrated = alt.Chart(frame[frame.scaling == "calibrated"]).mark_line(point=True, color="#e4572e").encode(
        x=alt.X("centre:Q", scale=x_scale), y=alt.Y("accuracy:Q", scale=y_scale), tooltip=tooltip)
    diagonal = alt.Chart(pd.DataFrame({"centre": [0, 1], "accuracy": [0, 1]})).mark_line(
        color="#888", strokeDash=[4, 4]).encode(x=alt.X("centre:Q", scale=x_scale),
                                                y=alt.Y("accuracy:Q", scale=y_scale))
    return alt.layer(bars, diagonal, calibrated).properties(
        height=260, title=f"{title}: ECE {result.ece_before:.2%} → {result.ece_after:.2%}")
