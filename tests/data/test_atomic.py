from __future__ import annotations

import json

import pytest

from transvert_monai.data.atomic import atomic_write, write_json_atomic


def _fail_midway(tmp):
    tmp.write_text("half a file")
    raise RuntimeError("interrupted")


def test_interrupted_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = write_json_atomic(tmp_path / "case.json", {"done": True})
    with pytest.raises(RuntimeError, match="interrupted"):
        atomic_write(path, _fail_midway)
    assert json.loads(path.read_text()) == {"done": True}
    assert [p.name for p in tmp_path.iterdir()] == ["case.json"]


def test_interrupted_first_write_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "sub" / "mask.nii.gz", _fail_midway)
    assert list((tmp_path / "sub").iterdir()) == []
