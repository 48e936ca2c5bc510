"""MONAI transforms of TransVert (array and dictionary versions), re-exported for bundle configs."""

from __future__ import annotations

from transvert_monai.transforms.appearance import *  # noqa: F401,F403
from transvert_monai.transforms.appearance import __all__ as _appearance_all
from transvert_monai.transforms.drr import *  # noqa: F401,F403
from transvert_monai.transforms.drr import __all__ as _drr_all
from transvert_monai.transforms.io import *  # noqa: F401,F403
from transvert_monai.transforms.io import __all__ as _io_all
from transvert_monai.transforms.radiograph import *  # noqa: F401,F403
from transvert_monai.transforms.radiograph import __all__ as _radiograph_all
from transvert_monai.transforms.sample import *  # noqa: F401,F403
from transvert_monai.transforms.sample import __all__ as _sample_all
from transvert_monai.transforms.spatial import *  # noqa: F401,F403
from transvert_monai.transforms.spatial import __all__ as _spatial_all
from transvert_monai.transforms.stacking import *  # noqa: F401,F403
from transvert_monai.transforms.stacking import __all__ as _stacking_all
from transvert_monai.transforms.voi import *  # noqa: F401,F403
from transvert_monai.transforms.voi import __all__ as _voi_all

__all__ = [*_appearance_all, *_drr_all, *_io_all, *_radiograph_all, *_sample_all, *_spatial_all, *_stacking_all, *_voi_all]
