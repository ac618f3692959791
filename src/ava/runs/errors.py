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


class OutputOverlapsInput(RunRefused):
    """The output is one of the command's inputs, inside an input folder, or holds an input: writing it
    would overwrite an input, read the command's own output back as input, or (``--restart``) delete one."""
