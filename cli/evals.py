"""`lore eval ...`: run an eval suite, compare two runs, write a run's report, generate questions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.exits import fail
from cli.exits import run as _run  # `lore eval report` has an argument named run
from cli.runtime import Bar, err, out
from core.errors import LoreError
from core.settings import get_settings

eval_app = typer.Typer(help="Evaluation suites.", no_args_is_help=True)


def _parse_limits(items: list[str] | None) -> dict[str, float]:
    limits = {}
    for item in items or []:
        metric, sep, value = item.partition("=")
        try:
            limits[metric.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise typer.BadParameter(f"{item!r}: expected METRIC=LIMIT, e.g. mrr=0.05")
    return limits


def _print_gates(gates: list[dict[str, Any]]) -> None:
    for gate in gates:
        verdict = "[green]pass[/]" if gate["passed"] else "[bold red]FAIL[/]"
        out.print(f"gate {verdict} {gate['name']}: {gate['message']}", highlight=False)


@eval_app.command("run")
def eval_run(
    suite_path: Annotated[Path, typer.Argument(metavar="SUITE.yaml", help="The suite file.")],
    out_dir: Annotated[
        Path,
        typer.Option("--out", help="Run directory: records.jsonl, results.json, junit.xml, report.html."),
    ] = Path("eval-out"),
    baseline: Annotated[
        str | None, typer.Option(help="Baseline run (directory or ID) for the suite's regression limits.")
    ] = None,
    max_drop: Annotated[
        list[str] | None,
        typer.Option(help="Regression limit METRIC=LIMIT against the baseline (repeatable)."),
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Run against this Lore server instead of in process.")
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar="LORE_KEY", help="API key or token for --url (default $LORE_KEY).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Run only this many questions (spread evenly).")
    ] = None,
    repeats: Annotated[
        int | None, typer.Option(min=1, help="Runs of every question (default: the suite's).")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Questions in flight (default: the suite's).")
    ] = None,
    judge: Annotated[
        bool | None,
        typer.Option("--judge/--no-judge", help="Switch the LLM judge on or off (default: the suite's)."),
    ] = None,
    fresh: Annotated[
        bool, typer.Option(help="Discard records of an earlier, unfinished run in --out.")
    ] = False,
) -> None:
    """Run an eval suite; a killed run continues when run again with the same --out.

    Exit code 0 when every gate passes, 1 when a gate fails, 2 on a usage or run error.
    """
    base_settings = get_settings()

    async def main() -> dict[str, Any]:
        from evals import datasets, service
        from evals.runner import RECORDS_FILE
        from evals.suite import load_suite

        suite = load_suite(suite_path, datasets_dir=base_settings.evals.datasets_dir)
        if limit is not None:
            suite.cases = datasets.pick(suite.cases, limit)
        suite.repeats = repeats or suite.repeats
        suite.concurrency = concurrency or suite.concurrency
        if judge is not None:
            suite.judge.enabled = judge
        suite.regression = service.regression_rules(suite.regression, _parse_limits(max_drop))
        if fresh:
            (out_dir / RECORDS_FILE).unlink(missing_ok=True)
        settings = suite.apply(base_settings)
        interactive = sys.stderr.isatty()
        if url is not None:
            with Bar("questions", enabled=interactive) as bar:
                return await service.run_remote(
                    settings, suite, url=url, token=token, out_dir=out_dir, baseline=baseline, progress=bar
                )
        from core.resources import open_resources

        async with open_resources(
            settings, with_llm=suite.mode == "answer", migrate_sqlite=True
        ) as resources:
            with (
                Bar("ingest", enabled=interactive) as ingest_bar,
                Bar("questions", enabled=interactive) as bar,
            ):
                return await service.run_in_process(
                    resources,
                    suite,
                    out_dir=out_dir,
                    baseline=baseline,
                    ingest_progress=ingest_bar,
                    progress=bar,
                )

    results = _run(main())
    summary = results["summary"]
    table = Table(title=f"suite {summary['suite']!r} ({summary['cases']} questions)")
    for column in ("metric", "value", "measured", "not measured"):
        table.add_column(column)
    agreement = ((results.get("judge") or {}).get("calibration") or {}).get("agreement", {})
    for name, value in summary["metrics"].items():
        detail = summary["metric_details"].get(name, {})
        shown = "n/a" if value is None else f"{value:.4f}"
        if name in agreement:
            shown += f" (judge agreement {agreement[name].get('agreement') or 0:.2f})"
        table.add_row(name, shown, str(detail.get("measured", "")), str(detail.get("not_measured", "")))
    out.print(table)
    warning = ((results.get("judge") or {}).get("calibration") or {}).get("warning")
    if warning:
        err.print(f"[bold yellow]judge[/]: {warning}", highlight=False)
    if summary["failed"]:
        err.print(f"[red]{summary['failed']} questions failed[/] (see results.json)")
    _print_gates(results["gates"])
    out.print(f"results: {out_dir / 'results.json'}, {out_dir / 'junit.xml'}, {out_dir / 'report.html'}")
    if not results["passed"]:
        raise typer.Exit(1)


@eval_app.command("compare")
def eval_compare(
    run_a: Annotated[str, typer.Argument(metavar="RUN_A", help="Baseline run: directory or ID.")],
    run_b: Annotated[str, typer.Argument(metavar="RUN_B", help="New run: directory or ID.")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write comparison.json and comparison.html here.")
    ] = None,
    max_drop: Annotated[
        list[str] | None, typer.Option(help="Regression limit METRIC=LIMIT (default: RUN_B's suite's).")
    ] = None,
) -> None:
    """Compare two runs question by question, regressions first; exit 1 when a regression gate fails."""
    settings = get_settings()
    from evals import reports, service
    from evals.compare import compare
    from evals.suite import Regression

    try:
        a = service.load_run(run_a, runs_dir=settings.eval_runs_dir)
        b = service.load_run(run_b, runs_dir=settings.eval_runs_dir)
    except LoreError as exc:
        raise fail(exc.message) from None
    rules = Regression.model_validate(b.get("suite", {}).get("regression") or {})
    rules = service.regression_rules(rules, _parse_limits(max_drop))
    result = compare(a, b, regression=rules, base_name=run_a)
    table = Table(title=f"{run_a} (A) -> {run_b} (B)")
    for column in ("metric", "A", "B", "B - A"):
        table.add_column(column)
    for name, d in result["metrics"].items():
        row = [("n/a" if d[key] is None else f"{d[key]:.4f}") for key in ("a", "b", "delta")]
        table.add_row(name + (" [red](worse)[/]" if d["worse"] else ""), *row)
    out.print(table)
    out.print(f"{result['regressed']} questions regressed, {result['improved']} improved")
    for q in result["questions"]:
        if not q["regressed"]:
            break
        changes = ", ".join(
            f"{n} {q['deltas'][n]['a']:.2f}->{q['deltas'][n]['b']:.2f}" for n in q["regressed"]
        )
        out.print(f"  [red]regressed[/] {q['question']} ({changes})", highlight=False)
    if not result["gates"]:
        out.print("no regression limits: set regression.max_drop in the suite or pass --max-drop")
    _print_gates(result["gates"])
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        reports.write_json(result, out_dir / "comparison.json")
        (out_dir / "comparison.html").write_text(reports.compare_html(result))
        out.print(f"comparison: {out_dir / 'comparison.json'}, {out_dir / 'comparison.html'}")
    if not result["passed"]:
        raise typer.Exit(1)


@eval_app.command("report")
def eval_report(
    run: Annotated[str, typer.Argument(metavar="RUN", help="Run directory or ID.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the HTML here (default: RUN/report.html).")
    ] = None,
    open_it: Annotated[bool, typer.Option("--open", help="Open the report in a web browser.")] = False,
) -> None:
    """Write a run's HTML report again from its results.json (and open it)."""
    from evals import reports, service

    settings = get_settings()
    try:
        results = service.load_run(run, runs_dir=settings.eval_runs_dir)
    except LoreError as exc:
        raise fail(exc.message) from None
    target = out_file or Path(results["run"]["dir"]) / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(reports.html_report(results))
    out.print(f"report: {target}")
    if open_it:
        import webbrowser

        webbrowser.open(target.resolve().as_uri())


@eval_app.command("generate")
def eval_generate(
    corpus: Annotated[str, typer.Option(help="Corpus whose chunks the questions come from.")],
    n: Annotated[int, typer.Option("-n", min=1, help="Questions to generate.")] = 50,
    out_file: Annotated[Path, typer.Option("--out", help="JSONL dataset to write.")] = Path(
        "generated.jsonl"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the chunk sample (same seed, same chunks).")] = 0,
) -> None:
    """Generate question and answer pairs from a corpus's chunks with the LLM (source chunk as reference)."""
    settings = get_settings()

    async def main() -> Any:
        from core.resources import open_resources
        from evals.generate import generate_cases

        async with open_resources(settings, migrate_sqlite=True) as resources:
            with Bar("generate", enabled=sys.stderr.isatty()) as bar:
                bar.start(n)
                return await generate_cases(
                    resources, corpus, n, seed=seed, progress=lambda: bar.advance("", "done", 0)
                )

    generated = _run(main())
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(
        "".join(case.model_dump_json(exclude_defaults=True) + "\n" for case in generated.cases)
    )
    out.print(f"{len(generated.cases)} cases written to {out_file}; {generated.skipped} replies skipped")
    for reason, count in generated.reasons.items():
        err.print(f"  skipped {count}: {reason}", highlight=False)


feedback_app = typer.Typer(help="Readers' feedback on answers, as eval cases.", no_args_is_help=True)
eval_app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    out_dir: Annotated[Path, typer.Option("--out", help="Write NAME.yaml (the suite) and NAME.jsonl here.")],
    rating: Annotated[str, typer.Option(help="down, up or all: which rated answers become cases.")] = "down",
    corpus: Annotated[
        str | None,
        typer.Option(help="The corpus the suite runs over (default: the one most rated answers asked)."),
    ] = None,
    name: Annotated[str, typer.Option(help="The suite's name and its files' stem.")] = "feedback",
) -> None:
    """Turn rated answers into an eval suite: `lore eval run OUT/NAME.yaml` replays them.

    Each rated question is a case: the documents its answer cited are the references, the reader's
    comment the notes; a thumbs-up answer is also the reference answer.
    """
    import json

    import yaml

    from api.conversations.service import rated_answers
    from cli.runtime import Database, with_database
    from evals.feedback import feedback_cases, feedback_suite, of_corpus

    if rating not in ("down", "up", "all"):
        raise typer.BadParameter("expected down, up or all", param_hint="--rating")
    if not name.replace("-", "").replace("_", "").isalnum():
        raise typer.BadParameter("letters, digits, - and _ only", param_hint="--name")

    async def read(_: Any, database: Database) -> list[Any]:
        async with database.sessions() as session:
            return await rated_answers(session, rating=None if rating == "all" else rating)

    rated = of_corpus(with_database(read), corpus)
    try:
        suite = feedback_suite(rated, corpus=corpus, name=name)
    except LoreError as exc:
        raise fail(exc.message) from None
    cases = feedback_cases(rated)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.jsonl").write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases))
    (out_dir / f"{name}.yaml").write_text(yaml.safe_dump(suite, sort_keys=False, allow_unicode=True))
    out.print(
        f"{len(cases)} case{'s' if len(cases) != 1 else ''} from {len(rated)} rated "
        f"answer{'s' if len(rated) != 1 else ''} over corpus {suite['corpus']}: "
        f"{out_dir / (name + '.yaml')} (run it: lore eval run {out_dir / (name + '.yaml')})",
        highlight=False,
        soft_wrap=True,
    )
