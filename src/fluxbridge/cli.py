"""The ``fluxbridge`` command: the pipeline's tasks from any working directory.

It is invoke's ``Program`` over :mod:`fluxbridge.tasks`, so ``fluxbridge demo``
and ``invoke demo`` (in a checkout) take the same options; ``fluxbridge --list``
lists the tasks and ``fluxbridge TASK --help`` documents one.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from invoke import Collection, Program

from fluxbridge import __version__, tasks

program = Program(
    namespace=Collection.from_module(tasks),
    name="fluxbridge",
    binary="fluxbridge",
    version=__version__,
)


def _help_first(argv: list[str]) -> list[str]:
    """``fluxbridge TASK --help`` as invoke's ``fluxbridge --help TASK``.

    invoke reads a ``--help`` after a task as the value of that task's first
    positional option, so ``twin --help`` would build a twin world in ``./--help``.
    """
    names = set(program.namespace.task_names)
    if any(a in ("-h", "--help") for a in argv[1:]):
        named = [a for a in argv[1:] if a in names]
        if named:
            return [argv[0], "--help", named[0]]
    return argv


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line ``argv`` (default: ``sys.argv``); exits with the task's code."""
    program.run(_help_first(list(argv) if argv is not None else sys.argv))
