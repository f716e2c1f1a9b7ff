"""The Explore page under AppTest: counts, the browsable grid, a close-up, the mean digits."""

from __future__ import annotations

import pytest

EXPLORE_PAGE = "app_pages/explore.py"


@pytest.fixture()
def explore_env(monkeypatch, mnist_path, tmp_path):
    """The real MNIST and an empty model store: Explore needs no model."""
    monkeypatch.setenv("DIGITLAB_MNIST", str(mnist_path))
    monkeypatch.setenv("DIGITLAB_MODELS", str(tmp_path / "no-models"))


def captions(app) -> list[list[str]]:
    return [image.captions for image in app.image]


def test_explore_shows_counts_grid_close_up_and_means(explore_env, make_app, mnist):
    app = make_app(EXPLORE_PAGE)
    assert not app.exception
    sizes = f"{len(mnist.y_train):,} training and {len(mnist.y_test):,} test images"
    assert sizes in "\n".join(c.value for c in app.caption)
    grid, close_up, means = captions(app)
    first = int(mnist.y_train[0])  # MNIST's first training digit is a 5
    assert len(grid) == 48 and grid[0] == f"{first} · #0"
    assert close_up == [f"#0: labelled {first}"]
    assert means == [f"mean {digit}" for digit in range(10)]
    assert "background" in "\n".join(c.value for c in app.caption)


def test_filter_page_and_close_up_work(explore_env, make_app, mnist):
    app = make_app(EXPLORE_PAGE)
    app.selectbox(key="explore_digit").set_value(3).run()
    app.number_input(key="explore_page").set_value(2).run()
    assert not app.exception
    grid = captions(app)[0]
    threes = [i for i, label in enumerate(mnist.y_train) if label == 3]
    assert grid[0] == f"3 · #{threes[48]}"  # the second page of threes
    assert all(caption.startswith("3 · ") for caption in grid)
    app.selectbox(key="explore_close_up").set_value(threes[50]).run()
    assert captions(app)[1] == [f"#{threes[50]}: labelled 3"]


def test_missing_mnist_is_told_without_the_server_path(explore_env, make_app, monkeypatch, tmp_path):
    """The path and the variable that would fix it go to the server's log, not to visitors."""
    monkeypatch.setenv("DIGITLAB_MNIST", str(tmp_path / "missing.npz"))
    app = make_app(EXPLORE_PAGE)
    assert not app.exception
    assert app.error[0].value == "MNIST is not available on this server, so the parts that need it are off."
