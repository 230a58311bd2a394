"""Logs for people: a line per stage on the console, the whole story in the run folder.

* Console: the ``fluxbridge`` loggers' INFO lines (DEBUG with ``--verbose``) as plain
  text on stdout, and each Python warning as one ``warning:`` line.
* File: every record at DEBUG with its time and source, the libraries' own INFO
  lines (Lightning's device summary) and the full text of every warning,
  appended to ``RUN/fluxbridge.log``.
* Progress: a bar on a terminal; elsewhere (a file, CI, ``nohup``) a DEBUG line per
  step, so that a redirected log holds no redrawn bars.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO, TypeVar

from tqdm import tqdm

LOGGER = "fluxbridge"
LOG_FILE = "fluxbridge.log"
#: Libraries whose INFO chatter (devices, tips) belongs in the file log, not on the console.
QUIET_LIBRARIES = ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric")
_FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

T = TypeVar("T")


def get(name: str) -> logging.Logger:
    """The logger of a fluxbridge module (``__name__``), under the ``fluxbridge`` tree."""
    return logging.getLogger(name if name.startswith(LOGGER) else f"{LOGGER}.{name}")


def is_terminal(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (default stdout) is an interactive terminal."""
    stream = sys.stdout if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


class _Stdout(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is when a record comes (pytest swaps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


class _RunFile(logging.FileHandler):
    """Appends to ``RUN/fluxbridge.log``, creating the folder on the first record only."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, mode="a", encoding="utf-8", delay=True)

    def _open(self):  # type: ignore[no-untyped-def]
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


class _WarningLine(logging.Formatter):
    """A warning on the console: its category and first line; the rest is in the file log."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name != f"{LOGGER}.warnings":
            return record.getMessage()
        return "warning: " + record.getMessage().splitlines()[0]


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    source = f" ({Path(filename).name}:{lineno})"
    text = str(message)
    first, _, rest = text.partition("\n")
    get("warnings").warning(f"{category.__name__}: {first}{source}" + (f"\n{rest}" if rest else ""))


@contextlib.contextmanager
def session(run: Path | None = None, verbose: bool = False) -> Iterator[None]:
    """Route fluxbridge's, the libraries' and Python's warnings to the console and the file log.

    ``run`` is the run folder whose ``fluxbridge.log`` receives every record (none: console only).
    Everything is restored on exit, so a task called twice in one process logs once.
    """
    root = logging.getLogger(LOGGER)
    console = _Stdout()
    console.setLevel(logging.DEBUG if verbose else logging.INFO)
    console.setFormatter(_WarningLine())
    # the libraries' warnings on the console, their INFO lines too with --verbose
    console_libraries = _Stdout()
    console_libraries.setLevel(logging.INFO if verbose else logging.WARNING)
    console_libraries.setFormatter(_WarningLine())
    handlers: list[logging.Handler] = [console]
    if run is not None:
        file = _RunFile(Path(run) / LOG_FILE)
        file.setLevel(logging.DEBUG)
        file.setFormatter(logging.Formatter(_FILE_FORMAT))
        handlers.append(file)
    saved_level, saved_propagate = root.level, root.propagate
    libraries = {name: logging.getLogger(name) for name in QUIET_LIBRARIES}
    saved_libraries = {n: (lg.handlers[:], lg.level, lg.propagate) for n, lg in libraries.items()}
    saved_show = warnings.showwarning
    # Lightning gives itself a stderr handler on import unless the root logger has one
    python_root = logging.getLogger()
    placeholder = logging.NullHandler()
    python_root.addHandler(placeholder)
    root.setLevel(logging.DEBUG)
    root.propagate = False
    for handler in handlers:
        root.addHandler(handler)
    for lib in libraries.values():
        lib.handlers = [console_libraries, *handlers[1:]]
        lib.setLevel(logging.INFO)
        lib.propagate = False
    warnings.showwarning = _show_warning
    try:
        yield
    finally:
        warnings.showwarning = saved_show
        python_root.removeHandler(placeholder)
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        console_libraries.close()
        root.setLevel(saved_level)
        root.propagate = saved_propagate
        for name, (hs, level, propagate) in saved_libraries.items():
            libraries[name].handlers = hs
            libraries[name].setLevel(level)
            libraries[name].propagate = propagate


def progress(items: Iterable[T], desc: str, unit: str, total: int | None = None) -> Iterator[T]:
    """``items`` with a bar on a terminal, and a DEBUG line per item elsewhere."""
    if is_terminal():
        yield from tqdm(items, desc=desc, unit=unit, total=total)
        return
    log = get("progress")
    total = total if total is not None else len(items) if hasattr(items, "__len__") else None
    t0 = time.perf_counter()
    for k, item in enumerate(items, start=1):
        yield item
        of = f"/{total}" if total is not None else ""
        log.debug(f"{desc}: {k}{of} {unit}s, {time.perf_counter() - t0:.1f} s")
