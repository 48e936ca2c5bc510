"""Command-line applications: ``transvert-drr``, ``transvert-example`` (and ``transvert-prepare`` in ``data``)."""

from __future__ import annotations

__all__: list[str] = []
