"""A helper to put a suite in a team's CI as a pytest test.

    from evals.testing import assert_gates_pass, run_suite

    def test_handbook_suite(tmp_path):
        results = run_suite("evals/suites/handbook.yaml", out_dir=tmp_path, baseline="eval-baseline")
        assert_gates_pass(results)

The suite runs in process with the process's settings (``LORE_*``) and the suite's overrides,
and writes its reports to ``out_dir`` (JUnit XML there too, for the CI's test view).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from core.settings import Settings, get_settings


def run_suite(
    suite_path: str | Path,
    *,
    out_dir: str | Path,
    baseline: str | Path | None = None,
    limit: int | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Run a suite in process and return its results (as written to ``out_dir/results.json``)."""
    from core.resources import open_resources
    from evals import datasets, service
    from evals.suite import load_suite

    base = settings or get_settings()
    suite = load_suite(Path(suite_path), datasets_dir=base.evals.datasets_dir)
    if limit is not None:
        suite.cases = datasets.pick(suite.cases, limit)

    async def main() -> dict[str, Any]:
        async with open_resources(
            suite.apply(base), with_llm=suite.mode == "answer", migrate_sqlite=True
        ) as res:
            return await service.run_in_process(res, suite, out_dir=Path(out_dir), baseline=baseline)

    return asyncio.run(main())


class GateFailed(AssertionError):
    """A suite's gate failed; the message lists every failed gate."""


def assert_gates_pass(results: dict[str, Any]) -> None:
    """Raise :class:`GateFailed` naming each failed gate (thresholds and regressions)."""
    failed = [g for g in results["gates"] if not g["passed"]]
    if failed:
        raise GateFailed("eval gates failed:\n" + "\n".join(f"  {g['name']}: {g['message']}" for g in failed))
