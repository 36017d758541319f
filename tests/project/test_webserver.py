"""`make ui` end to end: a real dagster-webserver serves the graph and a trained project's
materializations (tests/project/test_ui_browser.py opens the UI after the demo itself)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import REPO, start_service, stop_process_group

QUERY = """
{
  assetNodes { assetKey { path } groupName opVersion }
  assetOrError(assetKey: {path: ["model_evaluation"]}) {
    ... on Asset { assetMaterializations(limit: 1) { runId metadataEntries { label } } }
  }
}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_the_ui_shows_the_graph_with_the_last_materializations_and_their_metadata(trained_project):
    env, bin_dir = trained_project.env, Path(sys.executable).parent

    port = free_port()
    server = start_service([str(bin_dir / "dagster-webserver"), "-w", str(REPO / "workspace.yaml"), "-p", str(port)],
                           cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, result = time.monotonic() + 180, None
        while time.monotonic() < deadline:
            assert server.poll() is None, "dagster-webserver exited"
            try:
                result = graphql(port, QUERY)["data"]
                if result["assetNodes"]:
                    break
            except (OSError, KeyError, TypeError):
                pass
            time.sleep(0.5)
        assert result and result["assetNodes"], "the webserver never served the asset graph"
        keys = {"/".join(node["assetKey"]["path"]) for node in result["assetNodes"]}
        assert {"raw_samples", "features", "reduced_embeddings", "circuit_artifact", "quantum_kernel_train",
                "quantum_kernel_test", "quantum_svm", "classical_baseline", "vqc_model", "model_evaluation",
                "promoted_model", "hardware_kernel_spread"} <= keys
        (latest,) = result["assetOrError"]["assetMaterializations"]
        labels = {entry["label"] for entry in latest["metadataEntries"]}
        assert {"comparison", "dashboard", "gates", "kernel_heatmap", "content_hash"} <= labels
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/assets/model_evaluation", timeout=30) as page:
            assert page.status == 200
    finally:
        stop_process_group(server)
