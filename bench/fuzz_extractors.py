"""Fuzz every extractor with atheris (libFuzzer) and count executions and findings per extractor.

Each harness in ``tests/fuzz_harnesses.py`` calls ``ingestion.extract.extract`` on mutated inputs
grown from small valid files it builds itself; a harness runs in its own process (libFuzzer owns
the process it runs in) for ``--seconds-per-extractor`` seconds or ``--runs`` executions. Any
exception other than ``ExtractionError``/``UnsupportedFormatError``, an input slower than
``--timeout`` seconds, or a crash is a finding: its input is kept in the work dir, and the fuzzer
restarts on the same corpus until the extractor's time is spent (a finding seen three times ends
that extractor's run early). Prints one row per extractor and a total line; exits 1 on findings.

    nice python bench/fuzz_extractors.py --seconds-per-extractor 120
    python bench/fuzz_extractors.py --only text,csv --runs 100000 --work-dir /tmp/fuzz
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fuzz_harnesses import HARNESSES, worker_command  # noqa: E402

ARTIFACTS = ("crash-", "timeout-", "oom-", "leak-", "slow-unit-")
REPEATS_BEFORE_GIVING_UP = 3


@dataclass
class Tally:
    kind: str
    executions: int = 0
    seconds: float = 0.0
    starts: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    inputs: list[Path] = field(default_factory=list)


def _executions(log: str) -> int:
    """Executions libFuzzer reports: its final stats, else its last status line (``#N``)."""
    if found := re.findall(r"stat::number_of_executed_units: (\d+)", log):
        return int(found[-1])
    lines = re.findall(r"^#(\d+)\s", log, flags=re.MULTILINE)
    return int(lines[-1]) if lines else 0


def _signature(log: str, artifact: Path) -> str:
    """A finding's one-line identity: the exception and the innermost frame, or the libFuzzer error."""
    if "Uncaught Python exception" in log:
        after = log.split("Uncaught Python exception", 1)[1].splitlines()
        exception = next((line.strip() for line in after[1:] if line.strip()), "?")
        frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', log)
        where = f" at {Path(frames[-1][0]).name}:{frames[-1][1]} in {frames[-1][2]}" if frames else ""
        return f"{exception[:160]}{where}"
    error = re.search(r"ERROR: libFuzzer: ([^\n]+)", log)
    return f"{artifact.name.split('-')[0]}: {error.group(1) if error else 'see the log'}"


def run_extractor(kind: str, seconds: float, runs: int | None, timeout: int, work: Path) -> Tally:
    """Fuzz one extractor for ``seconds`` (or ``runs`` executions), restarting after each finding."""
    tally = Tally(kind)
    corpus, artifacts, logs = work / kind / "corpus", work / kind / "findings", work / kind / "logs"
    for folder in (artifacts, logs):
        folder.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 1 and (runs is None or tally.executions < runs):
        before = set(artifacts.iterdir())
        command = worker_command(
            kind,
            corpus=corpus,
            findings=artifacts,
            seconds=left,
            runs=None if runs is None else runs - tally.executions,
            timeout_s=timeout,
        )
        started = time.monotonic()
        done = subprocess.run(
            command,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        tally.seconds += time.monotonic() - started
        tally.starts += 1
        log = done.stdout + done.stderr
        (logs / f"run-{tally.starts}.log").write_text(log)
        tally.executions += _executions(log)
        new = sorted(p for p in set(artifacts.iterdir()) - before if p.name.startswith(ARTIFACTS))
        if not new:
            if done.returncode != 0:
                tally.findings[
                    f"exit {done.returncode} without an input: see {logs}/run-{tally.starts}.log"
                ] += 1
                break
            continue
        signature = _signature(log, new[0])
        tally.findings[signature] += 1
        tally.inputs.extend(new)
        if tally.findings[signature] >= REPEATS_BEFORE_GIVING_UP:
            break
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds-per-extractor", type=float, default=60.0)
    parser.add_argument("--runs", type=int, help="at most this many executions per extractor")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take (default 10)")
    parser.add_argument("--only", help=f"comma-separated extractors (default all: {','.join(HARNESSES)})")
    parser.add_argument("--work-dir", type=Path, help="keep corpora, findings and logs here")
    args = parser.parse_args()
    kinds = args.only.split(",") if args.only else list(HARNESSES)
    if unknown := set(kinds) - set(HARNESSES):
        parser.error(f"unknown extractors: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="lore-fuzz-") as tmp:
        work = args.work_dir or Path(tmp)
        print(
            f"{'extractor':10} {'executions':>11} {'seconds':>8} {'exec/s':>8} {'starts':>6} {'findings':>8}"
        )
        tallies = []
        for kind in kinds:
            tally = run_extractor(kind, args.seconds_per_extractor, args.runs, args.timeout, work)
            tallies.append(tally)
            rate = tally.executions / tally.seconds if tally.seconds else 0.0
            print(
                f"{kind:10} {tally.executions:11d} {tally.seconds:8.0f} {rate:8.0f} {tally.starts:6d} "
                f"{len(tally.findings):8d}",
                flush=True,
            )
        executions = sum(t.executions for t in tallies)
        seconds = sum(t.seconds for t in tallies)
        findings = sum(len(t.findings) for t in tallies)
        rate = executions / max(seconds, 1e-9)
        print(f"{'total':10} {executions:11d} {seconds:8.0f} {rate:8.0f} {'':6} {findings:8d}")
        for tally in tallies:
            for signature, times in tally.findings.items():
                print(f"finding [{tally.kind}] x{times}: {signature}")
            for path in tally.inputs:
                print(
                    f"  input: {path}" + ("" if args.work_dir else " (deleted with the temporary work dir)")
                )
    raise SystemExit(1 if findings else 0)


if __name__ == "__main__":
    main()
