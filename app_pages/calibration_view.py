"""The Evaluate page's "Honest confidence" section: ECE before and after, reliability diagrams.

Everything shown comes from the run cards (``digitlab.calibration`` computed it when the model was
trained or calibrated); nothing is measured here.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from digitlab.calibration import calibration_of

SET_TITLES = {"mnist": "MNIST test", "uci": "UCI digits"}


def calibration_ui(usable) -> None:
    """ECE per model and test set, and one model's reliability diagrams, raw and calibrated."""
    st.subheader("Honest confidence")
    st.caption("When a model says 90 %, is it right nine times in ten? Each model's probabilities "
               "are divided by one temperature, fitted on the images its training run held out, so "
               "that its confidence matches its accuracy; the answers themselves do not change. "
               "ECE (expected calibration error) is the average gap between confidence and accuracy.")
    calibrations = {entry.name: calibration_of(entry.card) for entry in usable}
    missing = [name for name, calibration in calibrations.items() if calibration is None]
    if missing:
        st.info(f"No temperature fitted yet for {', '.join(missing)}: run "
                f"`python -m digitlab calibrate {' '.join(missing)}`.")
    fitted = {name: calibration for name, calibration in calibrations.items() if calibration is not None}
    if not fitted:
        return
    st.dataframe(pd.DataFrame(_ece_rows(fitted)), hide_index=True, width="stretch", column_config={
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
    st.caption("Bars: the share of right answers among those given with that confidence; the "
               "diagonal is perfect honesty. Bars under it are over-confident, above it timid.")


def _ece_rows(fitted) -> list[dict]:
    return [{"model": name, "test set": SET_TITLES.get(key, key), "images": result.samples,
             "temperature": calibration.temperature, "ECE before": result.ece_before * 100,
             "ECE after": result.ece_after * 100, "not sure at or under": calibration.not_sure_below * 100}
            for name, calibration in fitted.items() for key, result in calibration.sets.items()]


def reliability_chart(result, title: str) -> alt.LayerChart:
    """Accuracy per confidence bin, raw and calibrated, over the diagonal of perfect calibration."""
    rows = [{"confidence": (row.lower + row.upper) / 2, "accuracy": row.accuracy, "answers": row.count,
             "scaling": scaling}
            for scaling, bins in (("raw", result.bins_before), ("calibrated", result.bins_after))
            for row in bins if row.count]
    frame = pd.DataFrame(rows)
    bars = alt.Chart(frame, title=f"{title}: ECE {result.ece_before:.2%} → {result.ece_after:.2%}").mark_bar(
        opacity=0.7).encode(
        x=alt.X("confidence:Q", bin=alt.Bin(extent=[0, 1], step=1 / 15), title="confidence"),
        y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        xOffset="scaling:N", color=alt.Color("scaling:N", sort=["raw", "calibrated"]),
        tooltip=["scaling", alt.Tooltip("confidence:Q", format=".2f"), alt.Tooltip("accuracy:Q", format=".1%"),
                 "answers"],
    )
    diagonal = alt.Chart(pd.DataFrame({"confidence": [0, 1], "accuracy": [0, 1]})).mark_line(
        color="#888", strokeDash=[4, 4]).encode(x="confidence:Q", y="accuracy:Q")
    return alt.layer(bars, diagonal).properties(height=260)
