from __future__ import annotations

import struct

import pytest
import torch

from tests.metrics.phantoms import box
from transvert_monai.visualize import save_case_figure, save_vertebra_figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# ten panels of 1.3 in at 80 dpi
EXPECTED_WIDTH_PX = 10 * 1.3 * 80

BAD_INPUT_CASES = [
    (torch.zeros(3, 16, 16), box((2, 2, 2), (6, 6, 6), size=12)[0], "image"),
    (torch.zeros(4, 16, 16), box((2, 2, 2), (6, 6, 6), size=12), "pred"),
]


def png_size(path):
    """(width, height) from the IHDR chunk, after checking the PNG signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return struct.unpack(">II", data[16:24])


def sample(index=20, size=16):
    image = torch.randn(4, size, size)
    image[1] = 0
    image[1, 7:9, 7:9] = 1
    image[3] = image[1]
    label = box((4, 3, 5), (12, 13, 11), size=size, value=float(index))[0]
    pred = label * 0.9 + 0.1 * torch.rand_like(label)
    return image, label, pred


def test_vertebra_figure_is_a_png_of_one_row(tmp_path):
    path = save_vertebra_figure(*sample(), path=tmp_path / "v.png", title="case_a L1")
    width, height = png_size(path)
    assert width == pytest.approx(EXPECTED_WIDTH_PX, abs=2) and 80 < height < 250


def test_case_figure_has_one_row_per_vertebra(tmp_path):
    one = save_case_figure([(*sample(20), 20)], tmp_path / "one.png")
    three = save_case_figure([(*sample(i), i) for i in (19, 20, 21)], tmp_path / "three.png")
    assert png_size(three)[1] > 2.5 * png_size(one)[1]


def test_figure_without_ground_truth_needs_only_the_index(tmp_path):
    image, _, pred = sample(24)
    path = save_case_figure([(image, None, pred, 24)], tmp_path / "nested" / "c.png", title="radiograph")
    assert png_size(path)[0] == pytest.approx(EXPECTED_WIDTH_PX, abs=2)


def test_figure_without_ground_truth_or_index_is_rejected(tmp_path):
    image, _, pred = sample()
    with pytest.raises(ValueError, match="label_index"):
        save_vertebra_figure(image, None, pred, tmp_path / "x.png", title="")


@pytest.mark.parametrize("image, pred, name", BAD_INPUT_CASES, ids=["three-channels", "batched-pred"])
def test_bad_shapes_are_rejected(tmp_path, image, pred, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        save_vertebra_figure(image, None, pred, tmp_path / "x.png", title="", label_index=20)


def test_writing_leaves_no_temporary_files(tmp_path):
    save_vertebra_figure(*sample(), path=tmp_path / "v.png", title="t")
    assert [p.name for p in tmp_path.iterdir()] == ["v.png"]
