"""The labelling bench part on a tiny model: it stores what it times and reports where the time goes."""

from __future__ import annotations

from handwriting_support import tiny_model

from bench.handwriting import labelling_section, measure_labelling


def test_the_labelling_bench_times_real_labels_and_their_parts(tmp_path):
    result = measure_labelling({"tiny": tiny_model(epochs=1)}, repeats=5, scratch=str(tmp_path))
    assert result["rows_stored"] == 5 + 3  # the timed labels and the warm-up ones, all kept
    assert result["label"]["n"] == 5 and result["label"]["p50"] > 0
    assert set(result["parts"]) == {"answers", "png", "database write"}
    assert "Labelling one drawing (tiny answering" in labelling_section(result)
