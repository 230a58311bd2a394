"""Every report of the tiny demo opened the way a person opens it: in a real headless Chromium.

A report fails when an image does not load (``naturalWidth == 0``) or a link is dead (a
relative href to a missing file, an in-page anchor to a missing id). A full-page screenshot of
each page is kept in ``$FLUXBRIDGE_TEST_ARTIFACTS`` (default: a folder under pytest's tmp dir);
the paths are printed.

Chromium is driven over its DevTools pipe (``--remote-debugging-pipe``: JSON messages ending in
NUL, commands on the browser's fd 3, replies on its fd 4), so the test needs the browser and
the standard library only: no WebDriver binary, no Python client package.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

CHROMIUM = os.environ.get("FLUXBRIDGE_CHROMIUM") or next(
    filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on PATH (Debian: apt-get install chromium; or set FLUXBRIDGE_CHROMIUM)",
)

VIEWPORT = {"width": 1440, "height": 900}  # a laptop screen, CSS pixels
TIMEOUT_S = 60.0
SENSITIVITY_SIZE = 3  # one random triple of the tiny scenario's 4 inversions: one subset model

# Runs in the page after its load event (which waits for every image to load or fail).
INSPECT_JS = """(() => ({
  title: document.title,
  images: [...document.images].map(i => ({src: i.getAttribute('src'), width: i.naturalWidth})),
  links: [...document.querySelectorAll('a[href]')].map(a => {
    const href = a.getAttribute('href');
    return {href, url: a.href, anchor: href.startsWith('#')
      ? document.getElementById(decodeURIComponent(href.slice(1))) !== null : null};
  }),
}))()"""


class Chromium:
    """One headless Chromium process; ``call`` sends a DevTools command and returns its result."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_browser, self._out = os.pipe()
        self._in, from_browser = os.pipe()
        # Lift the browser's ends above fd 10 first, so moving them onto 3 and 4 in the child
        # cannot overwrite one with the other.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser, from_browser)]
        for fd in (to_browser, from_browser):
            os.close(fd)
        self.log = profile / "chromium.log"
        with self.log.open("wb") as log:
            self._proc = subprocess.Popen(
                [
                    executable,
                    "--headless",
                    "--no-sandbox",  # CI runs as root, where the sandbox refuses to start
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--hide-scrollbars",
                    f"--user-data-dir={profile}",
                    "--remote-debugging-pipe",
                    "about:blank",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(3, 4),
                preexec_fn=lambda: (os.dup2(high[0], 3), os.dup2(high[1], 4)),
            )
        for fd in high:
            os.close(fd)
        self._buffer = b""
        self._events: list[dict] = []
        self._next_id = 0

    def _send(self, message: dict) -> None:
        os.write(self._out, json.dumps(message).encode() + b"\0")

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._in], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self._in, 1 << 20) if ready else b""
            if not chunk:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"Chromium did not answer (log {self.log}):\n{tail}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, **params: object) -> dict:
        self._next_id += 1
        message: dict = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._send(message)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = self._receive(deadline)
            if reply.get("id") != self._next_id:
                self._events.append(reply)
                continue
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            return reply["result"]

    def wait_event(self, method: str, session: str) -> dict:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            for event in self._events:
                if event.get("method") == method and event.get("sessionId") == session:
                    self._events.remove(event)
                    return event["params"]
            self._events.append(self._receive(deadline))

    def close(self) -> None:
        try:
            self.call("Browser.close")
            self._proc.wait(timeout=TIMEOUT_S)
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
            os.close(self._out)
            os.close(self._in)

    def open(self, page: Path, screenshot: Path) -> dict:
        """Load ``page`` from disk; return INSPECT_JS's findings; save a full-page PNG."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        try:
            self.call("Page.enable", session)
            self.call(
                "Emulation.setDeviceMetricsOverride",
                session,
                deviceScaleFactor=1,
                mobile=False,
                **VIEWPORT,
            )
            self.call("Page.navigate", session, url=page.resolve().as_uri())
            self.wait_event("Page.loadEventFired", session)
            found = self.call(
                "Runtime.evaluate", session, expression=INSPECT_JS, returnByValue=True
            )["result"]["value"]
            size = self.call("Page.getLayoutMetrics", session)["cssContentSize"]
            shot = self.call(
                "Page.captureScreenshot",
                session,
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            )
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            return found
        finally:
            self.call("Target.closeTarget", targetId=target)


def problems(page: Path, found: dict) -> list[str]:
    """What a reader of ``page`` would meet: images that did not load and dead links."""
    out = [f"image did not load: {i['src']}" for i in found["images"] if i["width"] == 0]
    for link in found["links"]:
        if link["anchor"] is False:
            out.append(f"in-page link to a missing id: {link['href']}")
        elif link["anchor"] is None and urlparse(link["url"]).scheme == "file":
            if not Path(unquote(urlparse(link["url"]).path)).is_file():
                out.append(f"link to a missing file: {link['href']}")
    # report.md beside the page: the same figures and links, as a Markdown viewer resolves them
    markdown = page.with_name("report.md")
    for target in re.findall(r"\]\(([^)\s]+)\)", markdown.read_text()):
        if not target.startswith(("#", "http:", "https:")) and not (page.parent / target).is_file():
            out.append(f"report.md refers to a missing file: {target}")
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    chromium = Chromium(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("FLUXBRIDGE_TEST_ARTIFACTS")
    path = Path(folder) / "reports" if folder else tmp_path_factory.mktemp("report-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def sensitivity_run(tiny_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo with one sensitivity subset, evaluated from a path relative to the
    working directory, as `invoke demo` / `invoke evaluate --run runs/demo` do."""
    from fluxbridge.evaluation.run import evaluate_run
    from fluxbridge.evaluation.sensitivity import run_sensitivity

    base = tmp_path_factory.mktemp("sensitivity-report")
    shutil.copytree(tiny_demo, base / "run", ignore=shutil.ignore_patterns("analysis_*"))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)
        assert run_sensitivity(Path("run"), [SENSITIVITY_SIZE], seed=0, max_folds=1) == 0
        evaluate_run(Path("run"))
    return base / "run"


# report name → (run fixture, the page under the run, figures that must be among its images)
# The bridges stage writes no page of its own: its figures and tables are in the evaluation's.
REPORTS = {
    "evaluation": (
        "tiny_demo",
        "report/index.html",
        {"fig2_global_annual.png", "fig8_sites.png", "inclusion_map.png", "pft_by_region.png"},
    ),
    "analysis": ("tiny_demo", "analysis_china/index.html", {"fig09_annual_totals.png"}),
    "sensitivity": ("sensitivity_run", "report/index.html", {"figC5_three.png"}),
}


@pytest.mark.parametrize("name", REPORTS)
def test_report_renders_in_chromium(
    name: str, request: pytest.FixtureRequest, browser: Chromium, artifacts: Path, capsys
) -> None:
    fixture, page, expected = REPORTS[name]
    page = request.getfixturevalue(fixture) / page
    screenshot = artifacts / f"{name}.png"
    found = browser.open(page, screenshot)
    with capsys.disabled():
        print(f"\n{name} report {page}: screenshot {screenshot}")
    assert found["title"], f"{page}: Chromium shows no title; did the page load?"
    loaded = {Path(i["src"]).name for i in found["images"]}
    assert expected <= loaded, f"{page}: expected figures {sorted(expected - loaded)} missing"
    assert found["links"], f"{page}: no links, not even the table of contents"
    found_problems = problems(page, found)
    assert not found_problems, f"{page} in Chromium:\n" + "\n".join(found_problems)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
