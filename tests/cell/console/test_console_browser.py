"""The operator console in a real browser (Debian chromium driven by Playwright) on the real line.

One synthetic boot pair (world seed 7) runs through the simulated cell over rosbridge, the controller with the
real pipeline, and the API. The MES sends the job order; in the console the operator signs in, resets and starts
the cell, sees the pair complete with its 3D view and inspection image, sees it in the rework queue (the
simulated cell clogs the nozzle on the upper, and the QA model fails the glue), forces it to pass with a
reason, and a screenshot is saved
(``runs/console.png``, 1366x768, and ``runs/console-tablet.png``). Any request to a host other than the app
fails the test.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
PAIR = "00000"
PAIR_TIMEOUT_MS = 90_000
SCREEN = {"width": 1366, "height": 768}
TABLET = {"width": 800, "height": 1180}
CHROMIUM_ARGS = ["--disable-background-networking", "--disable-component-update"]
IMAGE_SHOWN = ("(() => { const i = document.getElementById('insp-img'); return !i.hidden && i.dataset.item === '%s'"
               " && i.naturalWidth > 100; })()")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from gluecell.datasets.generate import GenerateOptions, generate_dataset, load_generate_config

    root = tmp_path_factory.mktemp("console") / "world"
    w, s = load_generate_config(None)
    generate_dataset(root, GenerateOptions(n=1, seed=7, world=w, scanner=s, styles=("boot",)))
    return root


def _confirm(page, reason: str) -> None:
    page.fill("#why-text", reason)
    page.click("#why-ok")


def _press(page, command: str, state: str) -> None:
    page.click(f"#command-buttons button[data-cmd='{command}']:not([disabled])")
    _confirm(page, f"console test: {command}")
    page.wait_for_function(f"document.getElementById('state').textContent === '{state}'", timeout=30_000)


def _wait_for_pair(page, row: str) -> None:
    """Wait for the pair's rework row; an operator un-holds a cell held by a link hiccup (a loaded machine)."""
    deadline = time.monotonic() + PAIR_TIMEOUT_MS / 1e3
    unholds = 0
    while time.monotonic() < deadline:
        if page.query_selector(row):
            return
        if page.text_content("#state") == "Held" and unholds < 2:
            unholds += 1
            _press(page, "Unhold", "Execute")
        page.wait_for_timeout(250)
    raise AssertionError(f"the pair did not reach the rework queue; state {page.text_content('#state')}")


@pytest.mark.slow
def test_operator_runs_the_line_from_the_console(world, tmp_path):
    if not CHROMIUM.is_file():
        pytest.fail("Debian chromium is missing: run 'make sysdeps' (APT_PACKAGES has chromium)")
    from playwright.sync_api import sync_playwright

    from gluecell.cell.bench.api_line import EmbeddedLine, job_for, world_pairs

    faults = tmp_path / "faults.toml"  # a clogged nozzle on the upper: the pair goes to rework on its glue
    faults.write_text(f'[[fault]]\nkind = "clogged_nozzle"\nitem = "{PAIR}"\nduring = "upper"\n'
                      'at_fraction = 0.0\nvalue = 0.2\n')  # fmt: skip
    with EmbeddedLine(tmp_path / "line", world, speed=80.0, faults=faults) as line, sync_playwright() as pw:
        app_host = urlparse(line.url).netloc
        mes = httpx.Client(base_url=line.url, headers={"Authorization": f"Bearer {line.token('mes')}"}, timeout=10)
        r = mes.post("/api/v1/job-orders?start=true", json=job_for("JOB-7", world_pairs(world)),
                     headers={"Idempotency-Key": "console-test"})  # fmt: skip
        assert r.status_code == 201
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        ctx = browser.new_context(viewport=SCREEN)
        foreign: list[str] = []

        def guard(route):
            if urlparse(route.request.url).netloc != app_host:
                foreign.append(route.request.url)
                route.abort()
            else:
                route.continue_()

        ctx.route("**/*", guard)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(line.url + "/")
        page.fill("#token", line.token("operator"))
        page.click("#login-form button[type=submit]")
        page.wait_for_function("document.getElementById('state').textContent === 'Stopped'", timeout=15_000)
        assert page.text_content("#user").startswith("operator-")
        _press(page, "Reset", "Idle")
        page.wait_for_function("document.getElementById('job').textContent.startsWith('JOB-7')", timeout=10_000)
        _press(page, "Start", "Execute")
        page.click("button[data-tab='rework']")
        row = f"#rework-rows tr[data-item='{PAIR}']"
        _wait_for_pair(page, row)  # the pair completed and went to rework
        page.wait_for_selector(f"#plot3d[data-item='{PAIR}'] .main-svg", timeout=20_000)
        page.wait_for_function(IMAGE_SHOWN % PAIR, timeout=20_000)
        assert page.text_content("#verdict") == "rework"
        traces = page.evaluate("document.getElementById('plot3d').data.map(t => t.name)")
        assert {"scan upper", "scan sole"} <= set(traces) and any(t.startswith("bite line") for t in traces)
        assert sorted(t for t in traces if t.startswith("path ")) == [
            "path sole: gun off", "path sole: gun on", "path upper: gun off", "path upper: gun on"]
        page.click("button[data-tab='kpi']")
        page.wait_for_function("document.getElementById('kpi-done') && document.getElementById('kpi-done')"
                               ".textContent === '1'", timeout=10_000)  # fmt: skip
        fits = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        assert fits[0] <= SCREEN["width"] and fits[1] <= SCREEN["height"], fits
        shot = tmp_path / "console.png"
        page.screenshot(path=str(shot))
        page.click("button[data-tab='rework']")
        page.click(f"{row} button[data-action='force_pass']")
        _confirm(page, "glue line checked by hand: fine")
        op = httpx.Client(base_url=line.url, headers={"Authorization": f"Bearer {line.token('engineer')}"}, timeout=10)
        deadline = time.monotonic() + 10
        while op.get(f"/api/v1/work-items/{PAIR}").json()["item"]["state"] != "passed":
            assert time.monotonic() < deadline, "the override was not applied"
            time.sleep(0.1)
        page.wait_for_selector(row, state="detached", timeout=10_000)
        audit = op.get("/api/v1/audit").json()["items"]
        forced = [a for a in audit if a["action"] == "override:force_pass"]
        assert forced and forced[0]["user"].startswith("operator-") and forced[0]["target"] == PAIR
        assert forced[0]["reason"] == "glue line checked by hand: fine"
        page.set_viewport_size(TABLET)
        page.wait_for_timeout(300)
        assert page.evaluate("document.documentElement.scrollWidth") <= TABLET["width"]
        tablet = tmp_path / "console-tablet.png"
        page.screenshot(path=str(tablet), full_page=True)
        browser.close()
        assert foreign == [] and errors == []
    (ROOT / "runs").mkdir(exist_ok=True)
    shutil.copy(shot, ROOT / "runs" / "console.png")
    shutil.copy(tablet, ROOT / "runs" / "console-tablet.png")
