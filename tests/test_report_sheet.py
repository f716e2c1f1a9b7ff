"""``digitlab report``: one sheet per model, in every format, drawn from its card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from digitlab.card import RunCard
from digitlab.cli import main
from digitlab.report_sheet import write_sheet

SHIPPED_CARD = Path(__file__).resolve().parent.parent / "models" / "mlp.json"


@pytest.fixture(scope="module")
def card() -> RunCard:
    return RunCard.from_dict(json.loads(SHIPPED_CARD.read_text()))


@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_the_sheet_is_written_in_the_format_its_name_asks_for(card, tmp_path, suffix, magic):
    test_images = np.random.default_rng(0).integers(0, 255, (10000, 28, 28), dtype=np.uint8)
    path = write_sheet(card, tmp_path / f"sheet{suffix}", test_images)
    assert path.read_bytes().startswith(magic) and path.stat().st_size > 10_000
    assert [item.name for item in tmp_path.iterdir()] == [f"sheet{suffix}"]  # no temporary file left


def test_without_mnist_the_sheet_still_has_curves_and_scores(card, tmp_path):
    assert write_sheet(card, tmp_path / "sheet.png").stat().st_size > 10_000


def test_an_unknown_format_or_an_untested_card_is_refused(card, tmp_path):
    with pytest.raises(ValueError, match="png"):
        write_sheet(card, tmp_path / "sheet.jpg")
    with pytest.raises(ValueError, match="no test result"):
        write_sheet(RunCard(architecture="mlp"), tmp_path / "sheet.png")
    assert list(tmp_path.iterdir()) == []


def test_the_command_writes_the_shipped_models_sheet(tmp_path, capsys):
    assert main(["report", "mlp", "--output", str(tmp_path / "mlp.svg")]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "mlp.svg").stat().st_size > 10_000
    assert main(["report", "mlp", "--output", str(tmp_path / "mlp.gif")]) == 1
    assert "error" in capsys.readouterr().err
