"""The capacity bench's own logic: the pad pictures it sends, its percentiles, its verdict."""

from __future__ import annotations

from bench.capacity import _percentile, max_sessions_within, pad_pictures
from digitlab.images import decode_data_url
from digitlab.preprocess import preprocess


def test_the_load_generator_sends_pictures_the_draw_page_reads_as_digits():
    for url in pad_pictures():
        picture = decode_data_url(url, max_pixels=2048 * 2048)
        assert picture.size == (280, 280)
        assert preprocess(picture).image is not None  # a digit, not "nothing drawn"


def test_percentiles_are_read_off_the_sorted_times():
    times = sorted(float(value) for value in range(1, 101))
    assert (_percentile(times, 50), _percentile(times, 95)) == (50.0, 95.0)
    assert _percentile([], 95) is None


def test_the_verdict_is_the_last_level_before_the_first_miss():
    def level(sessions, p95, errors=0):
        return {"sessions": sessions, "p95_ms": p95, "errors": errors}

    curve = {"1": level(1, 40), "5": level(5, 90), "10": level(10, 310), "20": level(20, 250)}
    assert max_sessions_within(curve, 300) == 5
    assert max_sessions_within({"1": level(1, 40, errors=1)}, 300) == 0
