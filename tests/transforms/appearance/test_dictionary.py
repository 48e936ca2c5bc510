from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from transvert_monai.transforms import DRRAppearance, DRRAppearanced, RandDRRAppearance, RandDRRAppearanced


def test_fixed_dictionary_matches_the_array_transform(batch):
    out = DRRAppearanced("image", gamma=0.8)({"image": batch, "label": "kept"})
    assert torch.equal(out["image"], DRRAppearance(gamma=0.8)(batch)) and out["label"] == "kept"


def test_random_dictionary_matches_the_array_transform_and_is_reproducible(batch):
    d = {"image": MetaTensor(batch)}
    t = RandDRRAppearanced("image", prob=0.9)
    assert t.set_random_state(seed=5) is t
    a = t(d)["image"]
    assert isinstance(a, MetaTensor)
    assert torch.equal(a, RandDRRAppearance(prob=0.9).set_random_state(seed=5)(batch))
    assert torch.equal(RandDRRAppearanced("image", prob=0.9).set_random_state(seed=5)(d)["image"], a)
    assert not torch.equal(RandDRRAppearanced("image", prob=0.9).set_random_state(seed=6)(d)["image"], a)


def test_keys_share_one_draw_and_missing_keys_can_be_allowed(batch):
    out = RandDRRAppearanced(["image", "copy"], allow_missing_keys=True).set_random_state(seed=0)(
        {"image": batch, "copy": batch.clone()}
    )
    assert torch.equal(out["image"], out["copy"])
    out = RandDRRAppearanced(["image", "absent"], allow_missing_keys=True).set_random_state(seed=0)({"image": batch})
    assert "absent" not in out
    with pytest.raises(KeyError):
        RandDRRAppearanced(["image", "absent"])({"image": batch})


def test_bad_prob_is_rejected_before_clipping():
    with pytest.raises(ValueError, match="`prob`"):
        RandDRRAppearanced("image", prob=-0.2)
