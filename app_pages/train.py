"""Placeholder: the Train page is being written by another engineer."""

import streamlit as st

st.title("Train")
st.info("Train page coming")
