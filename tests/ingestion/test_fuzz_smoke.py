"""Every atheris harness runs a few hundred executions without a finding, so none can rot.

The long run is ``bench/fuzz_extractors.py``; this one only proves each harness starts, builds
its seeds, extracts them through Lore's entry point and mutates them (about 30 s in all, the
office formats' parser imports being most of it).
"""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.fuzz_harnesses import HARNESSES, worker_command

REPO = Path(__file__).resolve().parents[2]
# Executions per harness: the formats unstructured reads run about 50-200 inputs a second.
RUNS = {"text": 2000, "markdown": 2000, "csv": 1000, "html": 300, "pdf": 300}
SLOW_RUNS = 40

pytestmark = pytest.mark.fuzz


def _fuzz_briefly(kind: str, work: Path) -> tuple[str, subprocess.CompletedProcess[str], list[Path]]:
    findings = work / kind / "findings"
    findings.mkdir(parents=True)
    command = worker_command(
        kind,
        corpus=work / kind / "corpus",
        findings=findings,
        seconds=20,
        runs=RUNS.get(kind, SLOW_RUNS),
        timeout_s=10,
    )
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    return kind, done, sorted(findings.iterdir())


def test_every_extractor_harness_fuzzes_without_findings(tmp_path: Path) -> None:
    # Given a harness per extractor, when each runs a fixed number of mutated inputs (two at a
    # time: CI machines are small),
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda kind: _fuzz_briefly(kind, tmp_path), HARNESSES))

    # then every one ran them all, and none found an input that breaks the contract.
    for kind, done, findings in results:
        log = done.stdout + done.stderr
        assert done.returncode == 0, f"{kind}: exit {done.returncode}\n{log[-3000:]}"
        assert not findings, f"{kind}: {findings}"
        executed = re.findall(r"stat::number_of_executed_units: (\d+)", log)
        assert executed, f"{kind}: no final stats\n{log[-3000:]}"
        assert int(executed[-1]) >= RUNS.get(kind, SLOW_RUNS), f"{kind}: {executed[-1]} executions"
