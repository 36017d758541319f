"""`make demo`, then `make ui`, as a person sees it in a real browser (headless Chromium).

`dagster dev` (webserver and daemon) on the demo's instance starts no run by itself; the
Lineage page shows the graph; `model_evaluation` shows its comparison table, its gates and its
plots (the images load), with no metadata wider than the page; `circuit_artifact` shows its
OpenQASM; "Materialize all" on the `refresh_models` job's page runs once, succeeds, and
automation adds no second run after it. Screenshots of each page are left in the test's
``tmp_path/screenshots``.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make services`` installs them) and the
``selenium`` package (dev extra).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.bad_files import write_good_csv
from tests.conftest import REPO, free_port, start_service, stop_process_group

CHROMEDRIVER = Path("/usr/bin/chromedriver")
SENSORS = ("landing_sensor", "scoring_sensor", "labels_sensor", "refresh_on_new_data")
WINDOW = (1920, 1080)  # a common desktop screen; the asset page keeps a Definition panel on the right
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def require_browser():
    """Selenium's webdriver module, or a failure that says how to install what is missing."""
    missing = [name for name in ("chromium",) if shutil.which(name) is None]
    if not CHROMEDRIVER.exists():
        missing.append("chromium-driver")
    if missing:
        pytest.fail(f"{' and '.join(missing)} not installed: the browser test drives Debian's headless Chromium. "
                    "Run `make services`, or `apt-get install -y chromium chromium-driver`.")
    try:
        from selenium import webdriver
    except ImportError:
        pytest.fail("selenium is not installed: `make test` installs the dev extra (`pip install -e '.[dev]'`).")
    return webdriver


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


def wait_until(condition, timeout_s: float, what: str, server: subprocess.Popen, log: Path):
    """Poll ``condition`` until it returns something truthy; fail if ``dagster dev`` dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert server.poll() is None, f"dagster dev exited:\n{log.read_text()[-4000:]}"
        try:
            value = condition()
        except (OSError, KeyError, TypeError):  # the webserver is still starting
            value = None
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{log.read_text()[-4000:]}")


def runs(port: int) -> dict[str, str]:
    """Every run of the instance: {run id: status}."""
    results = graphql(port, "{ runsOrError { ... on Runs { results { runId status } } } }")["runsOrError"]["results"]
    return {run["runId"]: run["status"] for run in results}


def finished_ticks_since(port: int, since: float) -> dict[str, int]:
    """How many ticks each sensor (the automation sensor included) finished after ``since``."""
    data = graphql(port, """{ sensorsOrError(repositorySelector: {repositoryLocationName: "hybrid_quantum",
        repositoryName: "__repository__"}) { ... on Sensors { results { name
        sensorState { ticks(limit: 10) { timestamp status } } } } } }""")
    return {sensor["name"]: sum(tick["timestamp"] > since and tick["status"] != "STARTED"
                                for tick in sensor["sensorState"]["ticks"])
            for sensor in data["sensorsOrError"]["results"]}


def wait_for_ticks(port: int, since: float, server: subprocess.Popen, log: Path) -> None:
    """Until the landing, scoring and labels sensors and automation each finished two ticks after
    ``since``: time enough for anything they would start to have started."""
    wait_until(lambda: all(finished_ticks_since(port, since).get(name, 0) >= 2 for name in SENSORS), 180,
               f"two ticks of {', '.join(SENSORS)}", server, log)


@pytest.fixture
def demo(local_project):
    """`make demo` on a small landing file: the instance and data `make ui` then opens."""
    write_good_csv(local_project.data / "landing", n_rows=40, name="data.csv")
    completed = local_project.command("hybrid-demo")
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return local_project


@pytest.fixture
def dagster_dev(demo, tmp_path):
    """`make ui` after `make demo`: `dagster dev` (webserver and daemon) on the demo's instance, on
    a free port. Stopped at the end with SIGTERM to its process group (SIGKILL after 30 s)."""
    port, log = free_port(), tmp_path / "dagster_dev.log"
    dagster = Path(sys.executable).with_name("dagster")
    with open(log, "w") as output:
        server = start_service([str(dagster), "dev", "-w", str(REPO / "workspace.yaml"), "-p", str(port)], cwd=REPO,
                               env=demo.env, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield port, server, log
    finally:
        stop_process_group(server)


@pytest.fixture
def browser(tmp_path):
    webdriver = require_browser()
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=%d,%d" % WINDOW):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    try:
        yield driver, shots
    finally:
        driver.save_screenshot(str(shots / "last.png"))
        driver.quit()


def wait_for(driver, xpath: str, timeout_s: float = 60):
    """The first element matching ``xpath`` once the page shows it."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout_s).until(expected_conditions.visibility_of_element_located(("xpath", xpath)))


def metadata_cell(driver, label: str):
    """The value cell of the metadata row ``label`` on an asset's Overview page."""
    return wait_for(driver, f"//table//tr[td[1][normalize-space()='{label}']]/td[last()]")


def metadata_table_rows(driver, label: str, timeout_s: float = 60) -> list[str]:
    """The text of each body row of the table in metadata row ``label``, once it rendered (the
    cell can show before the table inside it fills in)."""
    from selenium.webdriver.support.ui import WebDriverWait

    xpath = f"//table//tr[td[1][normalize-space()='{label}']]/td[last()]//tbody/tr"
    return WebDriverWait(driver, timeout_s).until(
        lambda d: [row.text for row in d.find_elements("xpath", xpath) if row.text.strip()] or None)


def open_plot(driver, label: str, shots: Path) -> tuple[int, int]:
    """Open a plot's "[Show Markdown]" dialog; its image's natural size once it loaded."""
    metadata_cell(driver, label).find_element("xpath", ".//a[normalize-space()='[Show Markdown]']").click()
    image = wait_for(driver, "//div[contains(@class, 'dialog')]//img")
    size = wait_until_loaded(driver, image)
    wait_until_shown(driver, "//div[contains(@class, 'bp5-dialog')]")  # the dialog fades in
    driver.save_screenshot(str(shots / f"3_{label}.png"))
    driver.find_element("xpath", "//button[normalize-space()='Close']").click()
    return size


def screenshot_at(driver, element, path: Path) -> None:
    """A screenshot with ``element`` at the top of its scrolled panel."""
    driver.execute_script("arguments[0].scrollIntoView(true)", element)
    driver.save_screenshot(str(path))


def wait_until_shown(driver, xpath: str, timeout_s: float = 10) -> None:
    """Until the element at ``xpath`` is fully opaque (for a screenshot after a fade-in)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout_s).until(lambda _: driver.execute_script(
        "const e = document.evaluate(arguments[0], document, null, 9, null).singleNodeValue;"
        "return e && getComputedStyle(e).opacity === '1';", xpath))


def wait_until_loaded(driver, image, timeout_s: float = 30) -> tuple[int, int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        loaded, width, height = driver.execute_script(
            "return [arguments[0].complete, arguments[0].naturalWidth, arguments[0].naturalHeight]", image)
        if loaded:
            return width, height
        time.sleep(0.2)
    raise AssertionError("the plot's image never loaded")


def test_a_person_opens_the_ui_after_the_demo_and_materializes_from_it(dagster_dev, browser):
    driver, shots = browser
    port, server, log = dagster_dev
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: graphql(port, "{ assetNodes { id } }")["assetNodes"], 180, "the webserver", server, log)
    started, demo_runs = time.time(), runs(port)
    graphql(port, "mutation { setNuxSeen }")  # what "Skip" on the first visit's community pop-up does

    # The Lineage page: the graph, by group.
    driver.get(f"{base}/asset-groups")
    wait_for(driver, "//button[contains(normalize-space(), 'Materialize all')]")
    for group in ("ingest", "quantum", "models", "serving", "hardware"):
        wait_for(driver, f"//*[normalize-space()='{group}']")
    wait_until(lambda: "fetching statuses" not in driver.find_element("tag name", "body").text, 60,
               "the graph's statuses", server, log)
    driver.save_screenshot(str(shots / "1_lineage.png"))

    # model_evaluation: the comparison table, the gates and the other checks inline, the plots one click away.
    driver.get(f"{base}/assets/model_evaluation")
    rows = metadata_table_rows(driver, "comparison")
    assert {row.split()[0] for row in rows} == {"quantum_svm", "classical_baseline", "vqc_model"}
    gates = metadata_cell(driver, "gates").text
    assert all(name in gates for name in ("quantum_beats_classical", "reproducibility", "cost_within_budget",
                                          "latency_ceiling")), gates
    assert "never block promotion" in metadata_cell(driver, "other_checks").text
    screenshot_at(driver, metadata_cell(driver, "verdict"), shots / "2_model_evaluation.png")
    table_width, page_width = driver.execute_script(
        "const table = document.evaluate(\"//table[.//td[normalize-space()='comparison']]\", document, null, 9, null)"
        ".singleNodeValue; return [table.scrollWidth, table.parentElement.clientWidth];")
    assert table_width <= page_width, "a metadata row is wider than the page: it is cut off on the right"
    heatmap, verdict_plot = open_plot(driver, "kernel_heatmap", shots), open_plot(driver, "verdict_plot", shots)
    assert heatmap[0] >= 600 and heatmap[1] >= 500, f"the kernel heatmap is {heatmap[0]}x{heatmap[1]} px"
    assert verdict_plot[0] > 0 and verdict_plot[1] > 0

    # circuit_artifact: the OpenQASM itself, not only a file path.
    driver.get(f"{base}/assets/circuit_artifact")
    qasm = metadata_cell(driver, "openqasm")
    assert "OPENQASM 2.0;" in qasm.text
    screenshot_at(driver, qasm, shots / "4_circuit_artifact.png")

    # Nothing started by itself: every sensor and automation ticked twice since the UI came up.
    wait_for_ticks(port, started, server, log)
    assert runs(port) == demo_runs, "opening the UI after the demo started a run"

    # The one-click refresh: Materialize all on the refresh_models job's page (where the UI's
    # descriptions lead) runs once and succeeds; automation adds nothing after it, since the same
    # data gives every asset the same data version (an evaluation's measured latencies included).
    driver.get(f"{base}/locations/hybrid_quantum/jobs/refresh_models")
    wait_for(driver, "//*[contains(normalize-space(), 'The one-click refresh')]")
    wait_for(driver, "//button[normalize-space()='Materialize all']").click()
    run_id = wait_until(lambda: next(iter(set(runs(port)) - set(demo_runs)), None), 60, "the launched run", server, log)
    status = wait_until(lambda: runs(port)[run_id] if runs(port)[run_id] in FINISHED else None, 300,
                        "the run to finish", server, log)
    driver.get(f"{base}/runs/{run_id}")
    wait_for(driver, "//*[contains(normalize-space(), 'model_evaluation')]")
    driver.save_screenshot(str(shots / "5_run.png"))
    assert status == "SUCCESS", log.read_text()[-4000:]
    wait_for_ticks(port, time.time(), server, log)
    assert set(runs(port)) == set(demo_runs) | {run_id}, "a second run started after the click"
