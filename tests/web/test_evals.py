"""Evaluations in the browser: an evaluator runs an uploaded suite twice, reads a report and
compares the runs; a reader's thumbs-down with a comment becomes an exportable eval dataset."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.served import REPO
from tests.web.conftest import Lore, Session, ask, axe_check, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.models]

# Retrieval only: no LLM time, so a run takes a second or two.
SUITE = {
    "name": "handbook-smoke",
    "corpus": "handbook",
    "mode": "retrieve",
    "k": 2,
    "thresholds": {"hit@2": 0.5},
    "cases": [
        {"question": "How much may employees claim for meals?", "reference_documents": ["travel.md"]},
        {"question": "How many crates did the Northwind depot ship?", "reference_documents": ["depot.pdf"]},
        {"question": "What must new starters enable on day one?", "reference_documents": ["onboarding.md"]},
    ],
}


async def _start_run(page: Page, suite_file: Path, *, limit: int, baseline: str | None = None) -> str:
    """Start a run of ``suite_file`` from the Evaluations screen and wait for it to finish: its id."""
    start = page.get_by_role("region", name="Start a run")
    await start.get_by_label("Or upload a suite file (JSON or JSONL)").set_input_files(suite_file)
    await expect(start).to_contain_text(f"{suite_file.name}: {len(SUITE['cases'])} cases")  # type: ignore[arg-type]
    await start.get_by_role("spinbutton", name="Limit (questions)").fill(str(limit))
    if baseline:
        await start.get_by_role("combobox", name="Baseline run").select_option(baseline)
    runs = page.get_by_role("table", name="Runs").get_by_test_id("eval-run-row")
    before = await runs.count()
    async with page.expect_response(
        lambda r: r.url.endswith("/v1/evals/runs") and r.request.method == "POST"
    ) as r:
        await start.get_by_role("button", name="Start run").click()
    started = await (await r.value).json()
    run_id: str = started["id"]
    await expect(runs).to_have_count(before + 1)
    row = runs.filter(has=page.get_by_role("link", name=run_id[:8]))
    await expect(row).to_contain_text(re.compile("succeeded|failed"), timeout=60_000)
    return run_id


async def test_an_evaluator_runs_a_suite_reads_its_report_and_compares_two_runs(
    page: Page, lore: Lore, tmp_path: Path
) -> None:
    suite_file = tmp_path / "handbook-smoke.json"
    suite_file.write_text(json.dumps(SUITE))
    await sign_in(page, lore, "evaluator", route="evals")
    await expect(page.get_by_role("heading", name="Evaluations", level=1)).to_be_visible()
    await axe_check(page, "evals")

    # When the evaluator runs the uploaded suite on two of its questions
    first = await _start_run(page, suite_file, limit=2)
    await axe_check(page, "evals (a run finished)")

    # then its page shows the metrics, and its report opens in a sandboxed frame
    await page.get_by_role("table", name="Runs").get_by_role("link", name=first[:8]).click()
    await expect(page.get_by_role("heading", name=f"Run {first[:8]}", level=1)).to_be_visible()
    await expect(page.get_by_role("table", name="Metrics")).to_contain_text("hit@2")
    await page.get_by_role("button", name="View report").click()
    frame = page.get_by_title("Eval report")
    await expect(frame).to_have_attribute("sandbox", "")
    # opened by a one-minute ticket (a frame sends no bearer header), under the report's own CSP
    assert re.fullmatch(r"/v1/evals/runs/[^/?]+/report\?ticket=.+", await frame.get_attribute("src") or "")
    await expect(page.frame_locator('iframe[title="Eval report"]').locator("body")).to_contain_text(
        "handbook-smoke"
    )
    await axe_check(page, "eval run")

    # When they run it again on all three, against the first, and compare the two
    await page.goto(lore.url("evals"))
    second = await _start_run(page, suite_file, limit=3, baseline=first)
    compare = page.get_by_role("region", name="Compare runs")
    await compare.get_by_role("combobox", name="Run A").select_option(first)
    await compare.get_by_role("combobox", name="Run B").select_option(second)
    await compare.get_by_role("button", name="Compare").click()

    # then the comparison shows the metrics' changes and the questions
    await expect(page).to_have_url(re.compile(rf"#/evals/compare\?a={first}&b={second}$"))
    await expect(page.get_by_role("heading", name="Compare runs", level=1)).to_be_visible()
    await expect(page.get_by_role("table", name="Metric changes")).to_contain_text("hit@2")
    questions = page.get_by_role("table", name="Questions").get_by_test_id("compare-question")
    await expect(questions.first).to_be_visible()
    await axe_check(page, "evals compare")


async def test_a_thumbs_down_with_a_comment_becomes_an_exportable_dataset(
    web: Session, lore: Lore, tmp_path: Path
) -> None:
    question = "Where must meal receipts be uploaded?"
    comment = "It should name the expenses portal and the 30 day limit."
    # Given a reader who rates an answer not helpful, with a comment
    reader = await web.new_page()
    await sign_in(reader, lore, "reader")
    await reader.get_by_role("combobox", name="Corpus").select_option(label="handbook")
    answer = await ask(reader, question, number=1)
    await answer.get_by_role("button", name="Not helpful").click()
    await expect(answer.get_by_role("button", name="Not helpful")).to_have_attribute("aria-pressed", "true")
    await answer.get_by_role("textbox", name="Feedback comment").fill(comment)
    await answer.get_by_role("button", name="Send comment").click()
    await expect(answer.get_by_role("status").filter(has_text="Feedback saved")).to_be_visible()
    await axe_check(reader, "ask (feedback given)")

    await reader.close()

    # When an evaluator opens Feedback
    await web.context.clear_cookies()
    evaluator = await web.new_page()
    await sign_in(evaluator, lore, "evaluator", route="feedback")
    await expect(evaluator.get_by_role("heading", name="Feedback", level=1)).to_be_visible()

    # then the rating is listed with its question and comment
    item = evaluator.get_by_test_id("feedback-item").filter(has_text=question)
    await expect(item).to_contain_text(comment)
    await axe_check(evaluator, "feedback")

    # and exported as an eval dataset holding the question and the comment
    async with evaluator.expect_download() as downloading:
        await evaluator.get_by_role("button", name="Export as eval dataset").click()
    saved = await (await downloading.value).path()
    exported = json.loads(await asyncio.to_thread(saved.read_text))
    [case] = [c for c in exported["cases"] if c["question"] == question]
    assert comment in json.dumps(case), case

    # and `lore eval feedback export` writes the same case from the server's database
    out = tmp_path / "exported"
    cli = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "eval",
        "feedback",
        "export",
        "--out",
        str(out),
        "--corpus",
        "handbook",
        cwd=REPO,
        env=lore.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    printed, _ = await cli.communicate()
    assert cli.returncode == 0, printed.decode()
    cases = [json.loads(line) for line in (out / "feedback.jsonl").read_text().splitlines()]
    [case] = [c for c in cases if c["question"] == question]
    assert comment in json.dumps(case), case
    assert (out / "feedback.yaml").is_file()
