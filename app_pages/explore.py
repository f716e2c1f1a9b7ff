"""Explore: the MNIST digits the models learn from — counts, samples, pixels, averages."""

from __future__ import annotations

import altair as alt
import streamlit as st

from app_pages.common import histogram_chart, load_data
from digitlab.display import enlarge
from digitlab.explore import class_count_rows, mean_images, page_of, pixel_histogram

PER_PAGE = 48
THUMBNAIL = 56
ALL_DIGITS = "all digits"


def render() -> None:
    st.title(":material/grid_view: Explore the data")
    st.caption("MNIST: 70,000 handwritten digits, 28×28 grey pixels, white ink on black, each "
               "centred by its centre of mass in a 20×20 box — 60,000 to learn from, 10,000 to test on.")
    data, message = load_data()
    if data is None:
        st.error(message)
        return
    counts_ui(data)
    indices = browse_ui(data)
    close_up_ui(data, indices)
    averages_ui(data)


def counts_ui(data) -> None:
    st.subheader("How many of each digit")
    rows = class_count_rows(data.y_train, data.y_test)
    chart = alt.Chart(alt.Data(values=rows), height=220).mark_bar().encode(
        x=alt.X("digit:N", axis=alt.Axis(labelAngle=0)), xOffset="split:N",
        y=alt.Y("count:Q", title="images"), color=alt.Color("split:N", title="split"),
        tooltip=["digit:N", "split:N", "count:Q", alt.Tooltip("share:Q", format=".1%")],
    )
    st.altair_chart(chart, width="stretch")
    st.caption(f"{len(data.y_train):,} training and {len(data.y_test):,} test images. The classes are "
               "close to balanced, so plain accuracy is a fair summary.")


def browse_ui(data) -> list[int]:
    """A page of training digits; returns their indices."""
    st.subheader("Training digits")
    which, where = st.columns(2)
    choice = which.selectbox("Show", [ALL_DIGITS, *range(10)], key="explore_digit",
                             format_func=lambda d: d if d == ALL_DIGITS else f"only {d}s")
    digit = None if choice == ALL_DIGITS else int(choice)
    _, pages = page_of(data.y_train, digit, 1, PER_PAGE)
    page = where.number_input(f"Page (of {pages:,})", 1, pages, 1, key="explore_page")
    indices, _ = page_of(data.y_train, digit, int(page), PER_PAGE)
    st.image([enlarge(data.x_train[i], THUMBNAIL) for i in indices], width=THUMBNAIL,
             caption=[f"{data.y_train[i]} · #{i}" for i in indices])
    return [int(i) for i in indices]


def close_up_ui(data, indices: list[int]) -> None:
    st.subheader("One digit, pixel by pixel")
    picked, histogram_column = st.columns([1, 2], gap="large")
    index = picked.selectbox("Digit from this page", indices, key="explore_close_up",
                             format_func=lambda i: f"#{i} (a {data.y_train[i]})")
    if index is None:
        return
    image = data.x_train[index]
    picked.image(enlarge(image, 196), width=196, caption=f"#{index}: labelled {data.y_train[index]}")
    histogram = pixel_histogram(image)
    histogram_column.vega_lite_chart(histogram_chart(histogram["rows"], height=220), width="stretch")
    histogram_column.caption(
        f"{histogram['background']} of {histogram['pixels']} pixels are pure background (0, not "
        "drawn). The ink is mostly saturated (near 1) with a soft anti-aliased edge."
    )


def averages_ui(data) -> None:
    st.subheader("The average digit")
    means = _mean_images(data.source, len(data.y_train), data)
    st.image([enlarge(mean, 84) for mean in means], width=84,
             caption=[f"mean {digit}" for digit in range(10)])
    st.caption("Each picture averages every training image of one digit: the blur shows how much "
               "people's handwriting varies, and why a model must learn more than a template.")


@st.cache_data(show_spinner="Averaging the digits…")
def _mean_images(source: str, count: int, _data):
    return mean_images(_data.x_train, _data.y_train)


render()
