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


def _option_value_error(exc: ValueError) -> str | None:
    """``--name 'value': expected an integer`` when invoke failed to cast an option's value.

    invoke casts the values of options with an ``int`` default itself, while parsing,
    and lets the ``ValueError`` of ``int("abc")`` escape with no option named; the
    argument being set is found in the traceback (``invoke.parser.Argument.set_value``).
    """
    tb = exc.__traceback__
    found = None
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "set_value" and "invoke" in frame.f_code.co_filename:
            found = frame.f_locals
        tb = tb.tb_next
    if found is None:
        return None
    argument, value = found.get("self"), found.get("value")
    name = str(getattr(argument, "name", "?")).replace("_", "-")
    kind = getattr(getattr(argument, "kind", None), "__name__", "value")
    expected = {"int": "an integer", "float": "a number"}.get(kind, f"a {kind}")
    return f"--{name} {value!r}: expected {expected}"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line ``argv`` (default: ``sys.argv``); exits with the task's code."""
    try:
        program.run(_help_first(list(argv) if argv is not None else sys.argv))
    except ValueError as exc:
        message = _option_value_error(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
