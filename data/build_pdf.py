"""Build data/corpus/security-guide.pdf, the sample corpus's PDF, from the text below.

The PDF is kept in the repository, so nothing at run time needs fpdf2; rerun this script
(``python data/build_pdf.py``) after editing the text. The output is byte-for-byte reproducible:
the creation date is fixed and each section starts its own page, so page numbers stay stable
for the eval suite's citations.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF

OUTPUT = Path(__file__).resolve().parent / "corpus" / "security-guide.pdf"
TITLE = "Lore Security Guide"

# One entry per page: (heading, blocks). A block is a paragraph (str), a bullet list (list of str)
# or a table (tuple of rows, the first row being the header).
Block = str | list[str] | tuple[tuple[str, ...], ...]
PAGES: list[tuple[str, list[Block]]] = [
    (
        "1. Scope and network exposure",
        [
            "This guide explains how to run Lore safely: who may reach the server, how services "
            "authenticate with API keys, how rate limits protect the server, and how to protect "
            "and back up the data Lore keeps. Read it before you make Lore available to anyone "
            "other than yourself.",
            "What Lore protects. A Lore installation holds copies of your documents, split into "
            "chunks, together with their embeddings and the questions people ask. Anyone who can "
            "query a corpus can read the passages it cites, so treat access to Lore like access "
            "to the documents themselves.",
            "Lore works offline. The embedding model and the small language model ship inside "
            "Python packages. Lore downloads no model and no data while it runs and sends no "
            "telemetry, so it can run on a machine with no internet access at all.",
            "Listening address. By default lore serve listens on 127.0.0.1, which accepts "
            "connections from the same machine only. Bind it to another address only when other "
            "machines must reach it, and then follow the rules below.",
            "Use TLS through a reverse proxy. Lore does not serve HTTPS itself: it speaks plain "
            "HTTP. When people or services reach Lore over a network, put a reverse proxy such as "
            "nginx, Caddy or Traefik in front of it to terminate TLS, and let only the proxy "
            "connect to Lore's port.",
            [
                "Never publish the Qdrant, PostgreSQL, Redis or vLLM ports outside the private "
                "network; only the proxy in front of Lore should be reachable.",
                "Keep Lore and its services on current patch releases.",
                "Run the API as an unprivileged user, as the provided container image does.",
            ],
        ],
    ),
    (
        "2. API keys",
        [
            "People sign in with a user name and password; programs and services use API keys "
            "instead. An API key belongs to one service account, carries one role and gives access "
            "only to the corpora granted to that account.",
            "Creating a key. An admin creates a key and gives it a name that says who uses it, for "
            "example wiki-bot or nightly-eval. Every key starts with the prefix lore_ followed by "
            "40 random characters, which makes leaked keys easy to find with secret scanners.",
            "A key is shown only once. Lore displays the full key at the moment it is created and "
            "stores only a SHA-256 hash of it. Nobody, including admins, can read the key again "
            "later. If a key is lost, revoke it and create a new one.",
            "Sending a key. A client sends its key in the Authorization header of every request, "
            "as a bearer token: Authorization: Bearer lore_3kq... Do not put keys in URLs or query "
            "strings, where they "
            "end up in proxy logs and browser history.",
            [
                "Rotate every key at least every 90 days: create the new key, deploy it, then "
                "revoke the old one.",
                "Revoke a key at once if it may have leaked. Revocation takes effect on the next "
                "request; no restart is needed.",
                "Give each service its own key, so that one key can be revoked without stopping the others.",
                "Give each key the least access it needs: only automation that manages corpora needs "
                "the admin role.",
            ],
        ],
    ),
    (
        "3. Rate limits",
        [
            "Rate limits stop one user or one runaway script from using all of the server's "
            "capacity. Lore limits requests per user and per API key with a token bucket: each "
            "caller has a bucket that refills at a steady rate, and every request takes one "
            "token from it. A full bucket allows a short burst above the steady rate.",
            (
                ("Setting", "Default"),
                ("Steady rate", "60 requests per minute"),
                ("Burst", "10 requests"),
                ("Counted per", "user and API key"),
                ("Streaming request", "counts as one request"),
            ),
            "When a caller goes over the limit, Lore answers with HTTP status 429 (Too Many "
            "Requests) and does not run the question. The response has a Retry-After header that "
            "gives the number of seconds to wait before trying again, and the usual error body "
            "with the code rate_limited.",
            "Clients should honour Retry-After rather than retrying at once: immediate retries "
            "only take tokens that would otherwise refill the bucket.",
            "Where the counters live. In the embedded mode the buckets are kept in the Lore "
            "process, so each process counts on its own and the counters reset when it restarts. "
            "When LORE_CACHE__REDIS_URL points at Redis, as in the Docker Compose deployment, the "
            "buckets live in Redis and every API replica shares them.",
        ],
    ),
    (
        "4. Protecting and backing up data",
        [
            "Everything an embedded installation stores lives in its data directory: the SQLite "
            "database lore.db and the Qdrant Edge shard with the vectors. The directory is set by "
            "LORE_DATA_DIR and defaults to ./.lore.",
            [
                "Make the data directory readable only by the account that runs Lore, for "
                "example with chmod 700.",
                "Put it on an encrypted disk when the documents are confidential.",
                "Do not place it in a folder that is synced to other machines or shared.",
            ],
            "Backups for a single machine. Stop Lore (the server and any running ingestion), copy "
            "the whole data directory, then start Lore again. Always back up lore.db and the "
            "Qdrant Edge shard together, from the same moment: a database from one day with "
            "vectors from another gives citations that point at the wrong chunks. To restore, "
            "stop Lore and put the copied directory back in place.",
            "Backups with servers. When Lore uses PostgreSQL and a Qdrant server, back up each with "
            "its own tools: pg_dump for the database and Qdrant snapshots for the vectors.",
            "Deleting documents. Deleting a document removes its chunks and vectors as well, so "
            "its text can no longer be retrieved or cited.",
            "Logs. Lore's logs record request IDs, status codes and timings, not the text of "
            "questions or answers, so logs can be shipped to a central log system without copying "
            "document content into it.",
        ],
    ),
]


class _GuidePDF(FPDF):
    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_font("Helvetica", "B", 9)
        self.set_text_color(110, 110, 110)
        self.cell(0, 6, TITLE, align="L")
        self.ln(10)
        self.set_text_color(0, 0, 0)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", "", 9)
        self.set_text_color(110, 110, 110)
        self.cell(0, 8, f"Page {self.page_no()} of {len(PAGES)}", align="C")


def _write_block(pdf: FPDF, block: Block) -> None:
    width = pdf.epw
    if isinstance(block, str):
        pdf.set_font("Helvetica", "", 11)
        pdf.multi_cell(width, 5.5, block)
        pdf.ln(3)
    elif isinstance(block, list):
        pdf.set_font("Helvetica", "", 11)
        for item in block:
            pdf.set_x(pdf.l_margin + 4)
            pdf.multi_cell(width - 4, 5.5, f"- {item}")
            pdf.ln(1)
        pdf.ln(2)
    else:
        pdf.set_font("Helvetica", "", 11)
        with pdf.table(col_widths=(1, 1), text_align="LEFT", line_height=7) as table:
            for row in block:
                cells = table.row()
                for text in row:
                    cells.cell(text)
        pdf.ln(4)


def build(output: Path = OUTPUT) -> Path:
    """Write the security guide PDF to ``output`` and return its path."""
    pdf = _GuidePDF(format="A4")
    pdf.set_title(TITLE)
    pdf.set_author("The Lore Project")
    pdf.set_creation_date(datetime(2026, 1, 1, tzinfo=UTC))
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_margins(20, 15, 20)
    for number, (heading, blocks) in enumerate(PAGES, start=1):
        pdf.add_page()
        if pdf.page_no() == 1:
            pdf.set_font("Helvetica", "B", 20)
            pdf.multi_cell(pdf.epw, 10, TITLE)
            pdf.ln(4)
        pdf.set_font("Helvetica", "B", 15)
        pdf.multi_cell(pdf.epw, 8, heading)
        pdf.ln(3)
        for block in blocks:
            _write_block(pdf, block)
        if pdf.page_no() != number:
            raise RuntimeError(f"section {heading!r} runs past page {number}: shorten it")
    output.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(output))
    return output


if __name__ == "__main__":
    print(build())
