"""Cognitia pricing and curation service."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    # One source for the version: pyproject.toml, as installed.
    __version__ = version("cognitia-pricing")
except PackageNotFoundError:  # pragma: no cover - running from a tree that was never installed
    __version__ = "0+unknown"
