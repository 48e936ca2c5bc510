"""Reading PyTorch checkpoints safely: tensors and plain containers only, with one message for every refusal.

``torch.load(weights_only=True)`` refuses a pickled object, but its message suggests retrying with
``weights_only=False``, which would run the file's code. TransVert never suggests that: a file that
holds more than tensors is refused as not a plain weights file.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import torch

from transvert_monai.errors import UnreadableFileError
from transvert_monai.io.paths import require_file

__all__ = ["load_plain_checkpoint"]


def load_plain_checkpoint(path: str | os.PathLike, what: str = "weights file", fix: str = "") -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with TransVert's messages.

    Args:
        path: the checkpoint.
        what: what it is, for messages (``"weights file"``, ``"resume checkpoint"``).
        fix: what to do when it is missing.

    Raises:
        FileNotFoundError: no such file.
        TransVertInputError: a folder, FIFO or device.
        UnreadableFileError: a truncated file, not a PyTorch checkpoint, or one holding objects other than
            tensors (never loaded: it could run code).
    """
    path = require_file(path, what, fix)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UnreadableFileError(
            f"the {what} {path} holds objects other than tensors (a pickled model, code or training objects), so it "
            "is not a plain weights file and is refused: it is never loaded, since loading it could run code. Use a "
            "file saved from network.state_dict() (training writes models/model.pt) or a checkpoint of this bundle."
        ) from None
    except Exception as err:  # truncated zip (RuntimeError), foreign file (EOFError, KeyError), ...
        text = str(err).strip()
        detail = text.splitlines()[0].split(". ")[0][:200] if text else "empty"
        if "weights_only" in detail:
            detail = "not a plain tensor file"
        raise UnreadableFileError(
            f"cannot read the {what} {path} ({type(err).__name__}: {detail}); it must be a complete PyTorch "
            "checkpoint holding only tensors (a state dict, as training writes to models/model.pt)."
        ) from None
