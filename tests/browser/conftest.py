"""The admin console in a real browser: Debian's headless Chromium, driven by Selenium
through the system's chromedriver, against Hosting and the emulators of the test stack.

One browser serves the module (starting Chromium costs seconds) and closes with it; the
console is built from its sources once per session, so the tests run what console/ holds
now.
Screenshots go to ``.cache/artefacts/browser/``; with ``UPDATE_SCREENSHOTS=1`` they are
copied to ``docs/screenshots/`` as well, for the README.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

from pytest_firebase.stack import EmulatorStack

ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = ROOT / ".cache" / "artefacts" / "browser"
README_SHOTS = ROOT / "docs" / "screenshots"
WINDOW = (1280, 1000)
MISSING_BROWSER = (
    "The browser tests need Debian's Chromium and its driver ({missing} not found): "
    "`make bootstrap` installs them when run as root; otherwise, as root: "
    "apt-get install chromium chromium-driver"
)


@pytest.fixture(scope="session")
def console_built() -> None:
    """public/console.js from console/ as it is now (the same command bootstrap runs)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js (node) is missing: install Node.js 20 or newer", pytrace=False)
    built = subprocess.run(
        [node, "console/build.mjs"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if built.returncode != 0:
        pytest.fail(f"node console/build.mjs failed:\n{built.stdout}{built.stderr}", pytrace=False)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Chromium, through the system chromedriver (Selenium Manager, which would
    download a driver, is never asked: the Service names the driver)."""
    found = {name: shutil.which(name) for name in ("chromium", "chromedriver")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        pytest.fail(MISSING_BROWSER.format(missing=" and ".join(missing)), pytrace=False)
    options = Options()
    options.binary_location = str(found["chromium"])
    profile = tmp_path_factory.mktemp("chromium-profile")
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the tests may run as root, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--lang=en-GB",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--user-data-dir={profile}",  # a fresh profile: no sign-in from an earlier run
    ):
        options.add_argument(argument)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTEFACTS / "chromedriver.log"
    log.unlink(missing_ok=True)  # Selenium appends: keep this run's alone
    service = Service(executable_path=str(found["chromedriver"]), log_output=str(log))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def console_url(firebase_stack: EmulatorStack, console_built: None) -> str:
    """The console as the test stack's Hosting emulator serves it; the page finds the
    stack's other emulators from its own port (console/src/config.ts)."""
    return f"http://{firebase_stack.host('hosting')}/"


Screenshot = Callable[[str], Path]


@pytest.fixture(scope="module")
def screenshot(browser: WebDriver) -> Screenshot:
    """``screenshot(name)``: the browser's window as ``<name>.png`` among the artefacts."""
    copy = os.environ.get("UPDATE_SCREENSHOTS") == "1"

    def take(name: str) -> Path:
        path = ARTEFACTS / f"{name}.png"
        assert browser.save_screenshot(str(path)), f"Chromium took no screenshot for {name}"
        print(f"screenshot: {path}")
        if copy:
            README_SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, README_SHOTS / path.name)
        return path

    return take
