"""Check the python_docs eval suite's dataset against the Python 3.11 manual it asks about.

The manual is Debian's `python3.11-doc` (HTML under /usr/share/doc/python3.11/html). For every
case of the suite's dataset (`evals/suites/python_docs.jsonl`):
- answerable: each reference document names exactly one page of the manual (a file name unique
  in the tree, or an absolute path under it) that the suite ingests; the text of one of its pages,
  as Lore's HTML extractor reads it (main content only), holds the case's `evidence` phrase
  verbatim (case, whitespace and the spacing around punctuation aside), and the reference pages
  together hold every content word of the reference answer;
- not answerable: none of the case's `absent_terms` occurs anywhere in the manual's tree, in any
  file (HTML, the reST sources under _sources/, the search index), case-insensitively.
Prints each failure and then the counts; exits 1 when anything failed.

    python bench/python_docs_check.py
    python bench/python_docs_check.py --suite my_suite.yaml --root /path/to/html
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from evals.suite import load_suite  # noqa: E402
from ingestion.formats.html import extract_html  # noqa: E402
from ingestion.sources import discover  # noqa: E402
from retrieval.citations import content_words  # noqa: E402

ROOT = Path("/usr/share/doc/python3.11/html")
SUITE = REPO / "evals" / "suites" / "python_docs.yaml"
PUNCT_SPACE = re.compile(r"\s*([^\w\s'\"-])\s*")


def normalise(text: str) -> str:
    """Lower case, typographic quotes and dashes as ASCII, whitespace collapsed and dropped around
    punctuation (the extractor spaces out inline code: ``os. makedirs ( name``)."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = text.replace("\u2014", "-").replace("\u2013", "-").replace("\u00b6", "")
    return PUNCT_SPACE.sub(r"\1", " ".join(text.lower().split()))


@cache
def page_text(path: Path) -> str:
    """The page's main content as Lore ingests it, normalised."""
    doc = extract_html(path.read_text(errors="replace"), path.stem)
    return normalise("\n".join(block.text for block in doc.blocks))


def pages_by_name(root: Path) -> dict[str, list[Path]]:
    """HTML pages of the manual (outside _sources, _static...) by file name."""
    found: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*.html")):
        if not path.relative_to(root).parts[0].startswith("_"):
            found.setdefault(path.name, []).append(path)
    return found


def resolve(reference: str, root: Path, names: dict[str, list[Path]]) -> tuple[Path | None, str]:
    """The one page a reference document names, or None and why not."""
    if reference.startswith("/"):
        path = Path(reference)
        if not path.is_file() or not path.is_relative_to(root):
            return None, f"{reference}: not a page of the manual"
        return path, ""
    matches = names.get(reference, [])
    if len(matches) != 1:
        return None, f"{reference}: names {len(matches)} pages (use the absolute path)"
    return matches[0], ""


def check_answerable(
    case: dict[str, Any], root: Path, names: dict[str, list[Path]], ingested: set[Path]
) -> list[str]:
    problems = []
    refs = case.get("reference_documents") or []
    if not refs or not case.get("reference_answer"):
        return ["no reference answer or document"]
    pages = []
    for ref in refs:
        page, why = resolve(ref, root, names)
        if page is None:
            problems.append(why)
        elif page not in ingested:
            problems.append(f"{ref}: the suite does not ingest {page}")
        else:
            pages.append(page)
    if not pages:
        return problems
    texts = [page_text(p) for p in pages]
    evidence = case.get("evidence")
    if not evidence:
        problems.append("no evidence phrase")
    elif not any(normalise(evidence) in t for t in texts):
        problems.append(f"evidence not on the page: {evidence!r}")
    # Content words as the citation check counts them (stopwords dropped, plurals folded).
    missing = sorted(content_words(case["reference_answer"]) - content_words(" ".join(texts)))
    if missing:
        problems.append(f"answer words not on the page: {missing}")
    return problems


def tree_text(root: Path) -> list[tuple[Path, str]]:
    """Every file of the manual's tree as lower-case text (gzip files unpacked, images skipped)."""
    files = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix in {".png", ".svg", ".inv"}:
            continue
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        files.append((path, data.decode(errors="replace").lower()))
    return files


def check_absent(case: dict[str, Any], files: list[tuple[Path, str]]) -> list[str]:
    terms = case.get("absent_terms") or []
    if not terms:
        return ["no absent_terms to check"]
    problems = []
    for term in terms:
        hits = [p for p, text in files if term.lower() in text]
        if hits:
            problems.append(f"{term!r} occurs in {len(hits)} files, e.g. {hits[0]}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the manual's HTML folder")
    parser.add_argument("--suite", type=Path, default=SUITE, help="the suite; its dataset is checked")
    args = parser.parse_args()
    root = args.root.resolve()
    if not root.is_dir():
        sys.exit(f"no manual at {root}: apt-get install python3.11-doc")
    suite = load_suite(args.suite)
    dataset = suite.dataset.path
    cases = [json.loads(line) for line in dataset.read_text().splitlines() if line.strip()]
    names = pages_by_name(root)
    ingested = {Path(source.source) for source in discover(suite.ingest)}
    files = tree_text(root)
    failures = 0
    for number, case in enumerate(cases, start=1):
        if case.get("answerable", True):
            problems = check_answerable(case, root, names, ingested)
        else:
            problems = check_absent(case, files)
        for problem in problems:
            print(f"FAIL {dataset.name}:{number} ({case['question'][:60]}): {problem}")
        failures += bool(problems)
    answerable = sum(c.get("answerable", True) for c in cases)
    print(
        f"{len(cases)} cases ({answerable} answerable, {len(cases) - answerable} not answerable), "
        f"{len(ingested)} pages ingested by {suite.name}: {failures} failures"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
