"""Logs for people: short console, full file log in the run folder, warnings on one line."""

from __future__ import annotations

import logging
import warnings

from fluxbridge import logs

#: Two screens of a laptop terminal.
TWO_SCREENS = 2 * 40


def test_demo_console_fits_on_two_screens(tiny_demo):
    console = (tiny_demo.parent / "console.log").read_text()
    lines = console.splitlines()
    assert 10 < len(lines) <= TWO_SCREENS, console
    assert "\r" not in console  # no redrawn progress bars in a redirected log
    for step in ("twin", "bridges", "train-ec", "train-ec-atm", "forward", "evaluate", "analyze"):
        assert sum(line.startswith(f"[demo] {step}: ") for line in lines) == 1, step
    assert "report: " in console and "global NEE" in console
    # library chatter goes to the file; expected warnings are fixed where they arise
    for noise in ("GPU available", "Tip:", "specified chunks", "invalid value", "LeafSpec"):
        assert noise not in console, noise


def test_demo_file_log_holds_the_details(tiny_demo):
    text = (tiny_demo / logs.LOG_FILE).read_text()
    assert "ec fold 0 epoch 0: " in text and "ec-atm fold 1 epoch 1: " in text
    assert "GPU available" in text  # Lightning's device summary, file only
    assert "region  n_pixels" in text  # the full bridge table
    assert "DEBUG fluxbridge.pipeline: [demo] forward ..." in text


def test_session_console_file_and_restore(tmp_path, capsys):
    log = logs.get("tests.demo")
    root = logging.getLogger(logs.LOGGER)
    before = (list(root.handlers), warnings.showwarning)
    with logs.session(tmp_path / "run"):
        log.info("stage done")
        log.debug("per-epoch detail")
        warnings.warn("first line\nsecond line", UserWarning, stacklevel=1)
        logging.getLogger("pytorch_lightning").info("GPU available: False")
    out = capsys.readouterr().out
    assert "stage done" in out and "per-epoch detail" not in out
    assert "warning: UserWarning: first line" in out and "second line" not in out
    assert "GPU available" not in out
    text = (tmp_path / "run" / logs.LOG_FILE).read_text()
    for expected in ("stage done", "per-epoch detail", "second line", "GPU available"):
        assert expected in text, expected
    assert (list(root.handlers), warnings.showwarning) == before
    log.info("after the session")
    with logs.session():
        log.info("once")
    assert capsys.readouterr().out.count("once") == 1


def test_verbose_shows_details_on_the_console(capsys):
    with logs.session(verbose=True):
        logs.get("tests.demo").debug("per-epoch detail")
        logging.getLogger("pytorch_lightning").info("GPU available: False")
    out = capsys.readouterr().out
    assert "per-epoch detail" in out and "GPU available" in out


def test_no_record_no_folder(tmp_path):
    with logs.session(tmp_path / "never"):
        pass
    assert not (tmp_path / "never").exists()


def test_progress_off_a_terminal_is_lines(tmp_path, capsys):
    with logs.session(tmp_path):
        assert list(logs.progress(range(3), "twin world", "block")) == [0, 1, 2]
    assert "\r" not in capsys.readouterr().out
    text = (tmp_path / logs.LOG_FILE).read_text()
    assert [line.split(": ", 1)[1].split(",")[0] for line in text.splitlines()] == [
        "twin world: 1/3 blocks",
        "twin world: 2/3 blocks",
        "twin world: 3/3 blocks",
    ]
