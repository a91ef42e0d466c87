"""The live dashboard where users see it: JupyterLab driven in Debian's headless Chromium.

JupyterLab runs on a loopback port with a token, its kernel is this interpreter (the virtual
environment, hooknb installed), and the notebook talks to the real local XMPP server it starts
(``scratch_server()``, whose directory its last cell prints).  Playwright drives
``/usr/bin/chromium`` (no browser download): it runs every cell of ``notebooks/dashboard.ipynb``,
then this process publishes to that server from a connection of its own and the test reads the rendered widgets: the feed shows the items, its
counters grow, the hook manager's delete button removes a hook.  A hook made by a ``%%hook``
cell prints while another cell runs: its output shows under its own cell, not the running one.
Screenshots go to
``test-artifacts/browser/``.

Needs the ``browser`` extra and the Debian packages ``chromium`` and ``chromium-driver``
(``make test`` installs them): skipped without them, except in CI (``$CI`` set), where a
missing piece fails the test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hooknb import server as srv
from hooknb.host import Host

pytestmark = pytest.mark.integration  # a server, JupyterLab and Chromium of its own

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"]
KERNEL = "Python 3 (hooknb)"
MICROBLOG = "urn:xmpp:microblog:0"
POST = '<entry xmlns="http://www.w3.org/2005/Atom"><title>{}</title></entry>'
TIMEOUT_MS = 60_000
#: A cell whose hook prints: its output must show under this cell, never under the running one.
PRINTING_HOOK = f'%%hook -n {MICROBLOG}\nprint("printed by the hook:", item.id)'
#: A cell that runs while the hooks run: it waits for five more runs of the printing hook.
SLEEPER = ("import time; printer = [h for h in host.registry.all() if 'printed by the hook' in h.arg][0]; "
           "start = printer.runs; deadline = time.monotonic() + 60\n"
           "while printer.runs < start + 5 and time.monotonic() < deadline: time.sleep(0.05)\n"
           "time.sleep(1); print('the sleeper is done after', printer.runs - start, 'runs')")

# JupyterLab settings: no news or update checks, and every cell kept in the page.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


def artifact(name: str) -> Path:
    """Where the test saves ``name`` (a screenshot, a log) for people and CI to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


def require(ok: bool, what: str) -> None:
    """Skip without ``what``, except in CI, where ``make test`` must have installed it."""
    if not ok:
        message = f"{what} is missing (make test installs it)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)


def write_jupyter_dirs(base: Path) -> dict[str, str]:
    """Private Jupyter directories under ``base``; returns the environment naming them.

    The ``python3`` kernel spec found first runs this interpreter (the virtual environment).
    """
    kernel = base / "jupyter" / "kernels" / "python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": KERNEL, "language": "python"}))
    for plugin, values in LAB_SETTINGS.items():
        path = base / "settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    return {"JUPYTER_PATH": str(base / "jupyter"), "JUPYTER_CONFIG_DIR": str(base / "config"),
            "JUPYTER_DATA_DIR": str(base / "data"), "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"), "IPYTHONDIR": str(base / "ipython")}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """JupyterLab on a loopback port serving a copy of the dashboard; yields its URL with token.

    The notebook gets two more cells at the end: a ``%%hook`` cell whose hook prints (where its
    output lands is checked), and one telling which Python and hooknb the kernel runs and where
    its server lives.
    """
    require(importlib.util.find_spec("jupyterlab") is not None, "JupyterLab (the browser extra)")
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    root.mkdir()
    notebook = json.loads((ROOT / "notebooks" / "dashboard.ipynb").read_text())
    for source in (PRINTING_HOOK, "import sys\nprint(sys.executable, hooknb.__file__, server.info.dir)"):
        notebook["cells"].append({"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                                  "source": source})
    (root / "dashboard.ipynb").write_text(json.dumps(notebook))
    token, port = secrets.token_hex(16), srv.free_port()
    env = {**os.environ, **write_jupyter_dirs(base), "HOOKNB_HOME": str(base / "hooknb-home")}
    log = base / "jupyterlab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={root}", "--ServerApp.allow_root=True", "--LabApp.news_url=",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_lab(url, token, proc, log)
        yield f"{url}/lab/tree/dashboard.ipynb?token={token}"
    finally:
        proc.terminate()  # JupyterLab shuts its kernels down on SIGTERM
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.copy(log, artifact("jupyterlab.log"))


def wait_for_lab(url: str, token: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(f"{url}/api/status", headers={"Authorization": f"token {token}"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with code {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            opener.open(request, timeout=2).close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"JupyterLab did not answer within {timeout} s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def page(lab: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """Debian's Chromium, headless with a fresh profile, showing the dashboard notebook."""
    require(importlib.util.find_spec("playwright") is not None, "Playwright (the browser extra)")
    require(CHROMIUM.exists(), f"{CHROMIUM} (Debian packages chromium, chromium-driver)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM),
            headless=True, args=CHROMIUM_FLAGS, viewport={"width": 1920, "height": 1080})
        try:
            tab = context.pages[0] if context.pages else context.new_page()
            tab.set_default_timeout(TIMEOUT_MS)
            tab.goto(lab)
            tab.get_by_text(f"{KERNEL} | Idle").wait_for()
            tab.keyboard.press("Control+b")  # hide the file browser: room for the widgets
            yield tab
        finally:
            tab.screenshot(path=str(artifact("last.png")))
            context.close()


def menu(page: Page, *path: str) -> None:
    """Click through JupyterLab's menu bar: ``menu(page, "Run", "Run All Cells")``."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(path[0])}$")).click()
    for label in path[1:]:
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(label)}$")).click()


def settled_number(locator: Locator, pattern: str, quiet: float = 1.0, timeout: float = 30.0) -> int:
    """The integer captured by ``pattern`` in the text of ``locator``, once that text has not
    changed for ``quiet`` seconds (the widgets redraw up to 10 times a second)."""
    text, since, deadline = locator.inner_text(), time.monotonic(), time.monotonic() + timeout
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, f"{locator} kept changing: {text!r}"
        time.sleep(0.1)
        if (now := locator.inner_text()) != text:
            text, since = now, time.monotonic()
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in {text!r}"
    return int(match.group(1))


def shot(locator: Locator, name: str) -> None:
    """Save a screenshot of ``locator`` as ``test-artifacts/browser/NAME``."""
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(artifact(name)))


def code_cell(page: Page, source: str) -> Locator:
    """The last code cell whose source contains ``source``."""
    return page.locator(".jp-CodeCell").filter(
        has=page.locator(".jp-InputArea-editor", has_text=source)).last


def new_cell(page: Page, source: str) -> Locator:
    """Type ``source`` in a new cell at the end and run it (without waiting for it to end)."""
    page.locator(".jp-CodeCell .jp-InputPrompt").last.click()
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.type(source)
    page.keyboard.press("Shift+Enter")
    return code_cell(page, source.splitlines()[0][:40])


def test_dashboard_live_in_chromium(page: Page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    menu(page, "Run", "Run All Cells")
    kernel_check = code_cell(page, "print(sys.executable").locator(".jp-OutputArea")
    expect(kernel_check).to_contain_text(sys.executable, timeout=120_000)  # the last cell has run
    expect(kernel_check).to_contain_text(str(ROOT / "hooknb" / "__init__.py"))
    xmpp = srv.read_info(kernel_check.inner_text().split()[-1])  # the notebook's own server
    # Nothing on stderr but the one line per failure of the hook that fails on purpose (1 / 0),
    # under its own cell (docs/hooks.rst, "What a hook prints").
    for stderr in page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all():
        assert all(re.fullmatch(r"hook \w+ failed: ZeroDivisionError: division by zero \(traceback: "
                                r"%hook runs; output: %hook output \w+\)", line)
                   for line in stderr.inner_text().splitlines()), stderr.inner_text()[:500]

    feed, manager = page.locator(".hooknb-feed"), page.locator(".hooknb-manager")
    expect(feed.locator("tr.hooknb-event").first).to_be_visible()
    events_before = settled_number(feed.locator(".hooknb-feed-summary"), r"(\d+) event")
    runs_before = settled_number(manager.locator(".hooknb-manager-summary"), r"(\d+) run")
    microblog_count = feed.locator("tr.hooknb-count", has_text=MICROBLOG).locator("td").last
    microblog_before = settled_number(microblog_count, r"(\d+)")

    # A cell runs while the hooks run: what the printing hook prints goes under its own cell.
    sleeper = new_cell(page, SLEEPER)
    expect(sleeper.locator(".jp-InputPrompt")).to_contain_text("[*]")

    # A separate connection (alice's "e2e" device, from this process) publishes.
    writer = Host(store_path=str(tmp_path / "writer.sqlite3"))
    try:
        client = writer.connect(f"{xmpp.jid('alice')}/e2e", xmpp.accounts["alice"], host=xmpp.host,
                                port=xmpp.port, cafile=xmpp.cafile)
        for i in range(5):
            client.publish(MICROBLOG, POST.format(f"from the browser test {i}"), item_id=f"e2e-{i}")
    finally:
        writer.disconnect()
        writer.store.close()

    expect(sleeper.locator(".jp-OutputArea")).to_contain_text("the sleeper is done after 5 runs")
    printing = code_cell(page, '"printed by the hook:", item.id')
    for i in range(5):
        expect(printing.locator(".jp-OutputArea")).to_contain_text(f"printed by the hook: e2e-{i}")
    expect(sleeper.locator(".jp-OutputArea")).not_to_contain_text("printed by the hook")
    shot(printing, "hook-output-under-its-cell.png")
    shot(sleeper, "running-cell-without-hook-output.png")

    newest = feed.locator("tr.hooknb-event").first
    expect(newest).to_contain_text("e2e-4")
    expect(newest).to_contain_text("from the browser test 4")
    expect(feed.locator("tr.hooknb-event", has_text="e2e-0")).to_have_count(1)
    expect(feed.locator(".hooknb-feed-summary")).to_contain_text(f"{events_before + 5} event")
    expect(microblog_count).to_have_text(str(microblog_before + 5))
    hooks_on_microblog = manager.locator(".hooknb-hook", has_text=MICROBLOG).count()
    expect(manager.locator(".hooknb-manager-summary")).to_contain_text(
        f"{runs_before + 5 * hooks_on_microblog} run")
    shot(code_cell(page, "%hook feed"), "dashboard-feed.png")
    shot(code_cell(page, "%hook manager"), "dashboard-manager.png")

    # The manager's delete button removes a hook (the one failing on purpose).
    hooks = manager.locator(".hooknb-hook")
    count = hooks.count()
    failing = hooks.filter(has_text="1 / 0")
    expect(failing).to_have_count(1)
    hook_id = failing.locator(".hooknb-cell").first.inner_text()
    failing.locator(".hooknb-delete").click()
    expect(hooks).to_have_count(count - 1)
    expect(hooks.filter(has_text="1 / 0")).to_have_count(0)
    expect(manager.locator(".hooknb-manager-status")).to_have_text(f"hook {hook_id} deleted")
    shot(code_cell(page, "%hook manager"), "dashboard-manager-after-delete.png")

    # `%hook list` typed in a new cell at the end agrees.
    listing = new_cell(page, "%hook list")
    expect(listing.locator(".jp-OutputArea table")).to_be_visible()
    expect(listing.locator(".jp-OutputArea tbody tr")).to_have_count(count - 1)
    expect(listing.locator(".jp-OutputArea")).not_to_contain_text(hook_id)
    shot(listing, "hook-list.png")

    # A hook shown as itself: its rich display (status, counters, code), rendered by JupyterLab.
    card = new_cell(page, f"[h for h in host.hooks() if h.node == {MICROBLOG!r}][0]")
    rendered = card.locator(".jp-OutputArea .hooknb-card")
    expect(rendered).to_be_visible()
    expect(rendered.locator(".hooknb-status")).to_have_text("active")
    expect(rendered).to_contain_text(MICROBLOG)
    expect(rendered).to_contain_text("runs")
    shot(card, "hook-rich-display.png")
