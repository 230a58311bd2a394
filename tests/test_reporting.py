"""The shared report renderer: figures and links relative to the report folder, numeric cells."""

from __future__ import annotations

import pytest

from fluxbridge.errors import FluxbridgeError
from fluxbridge.reporting import Figure, Link, Section, Table, write_report

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("absolute", [False, True])
def test_paths_are_relative_to_the_report_whatever_the_working_directory(
    tmp_path, monkeypatch, absolute
) -> None:
    monkeypatch.chdir(tmp_path)
    run = (
        (tmp_path / "runs" / "demo")
        if absolute
        else (tmp_path / "runs" / "demo").relative_to(tmp_path)
    )
    (run / "report").mkdir(parents=True)
    (run / "figures").mkdir()
    (run / "report" / "fig.png").write_bytes(PNG)
    (run / "figures" / "b2.png").write_bytes(PNG)
    (run / "table.csv").write_text("a\n1\n")
    section = Section(
        "S",
        figures=[Figure(run / "report" / "fig.png", "f"), Figure(run / "figures" / "b2.png", "b")],
        links=[Link(run / "table.csv", "table")],
    )
    markdown, page = write_report("T", [section], run / "report")
    html = page.read_text()
    assert 'src="fig.png"' in html and 'src="../figures/b2.png"' in html
    assert 'href="../table.csv"' in html and 'href="#s0"' in html and 'id="s0"' in html
    assert "(fig.png)" in markdown.read_text() and "(../table.csv)" in markdown.read_text()


def test_a_missing_figure_stops_the_report_before_anything_is_written(tmp_path) -> None:
    section = Section("S", figures=[Figure(tmp_path / "nope.png", "missing")])
    with pytest.raises(FluxbridgeError, match=r"nope\.png"):
        write_report("T", [section], tmp_path / "report")
    assert not list((tmp_path / "report").iterdir())


def test_numbers_are_right_aligned_and_names_are_not(tmp_path) -> None:
    table = Table(["region", "R", "RMSE"], [["BRA", 0.5, None], ["2001", "-1.2 ± 0.3", "n/a"]])
    _, page = write_report("T", [Section("S", tables=[table])], tmp_path)
    html = page.read_text()
    assert "<td>BRA</td>" in html
    for cell in ("0.5", "—", "2001", "-1.2 ± 0.3", "n/a"):
        assert f'<td class="num">{cell}</td>' in html
