"""transvert_monai: TransVert (Bayat et al., MICCAI 2020) as MONAI transforms, networks and bundles.

Importing the package imports its subpackages, so bundle configs can name any public object by its
dotted path (``transvert_monai.networks.TransVert``, ``transvert_monai.transforms.RenderDRRd``) after
a single ``$import transvert_monai``.
"""

from __future__ import annotations

__version__ = "0.3.0"

from transvert_monai import (  # noqa: E402
    data,
    engines,
    errors,
    geometry,
    handlers,
    io,
    losses,
    metrics,
    networks,
    outputs,
    transforms,
    visualize,
)
from transvert_monai.errors import (  # noqa: E402
    CheckpointMismatchError,
    ConfigTypeError,
    TransVertInputError,
    UnreadableFileError,
)
from transvert_monai.keys import TransVertKeys  # noqa: E402

__all__ = [
    "CheckpointMismatchError",
    "ConfigTypeError",
    "TransVertInputError",
    "TransVertKeys",
    "UnreadableFileError",
    "__version__",
    "data",
    "engines",
    "errors",
    "geometry",
    "handlers",
    "io",
    "losses",
    "metrics",
    "networks",
    "outputs",
    "transforms",
    "visualize",
]
