"""Why a run refuses to start: each is one line that names the output and what to do."""

from __future__ import annotations


class RunRefused(ValueError):
    """A command must not write to this output (yet); the message says why and what to do."""


class BindingMismatch(RunRefused):
    """The output was produced by another model, other inputs or other options."""


class OutputBusy(RunRefused):
    """Another process is writing this output (it holds the lock)."""


class NotWritable(RunRefused):
    """The output location is read-only, a file where a folder is needed, or under a file."""
