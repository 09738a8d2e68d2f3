// "Open in document": the cited page of a PDF drawn by pdf.js with the passage's boxes over it, or
// the document's text with the passage's spans marked; the passage alone when neither loads.
import { useEffect, useRef, useState } from "preact/hooks";
import { apiFetch, api, messageOf } from "../api";
import type { DocumentText, Location } from "../types";
import { Dialog, ErrorMessage, Loading } from "./ui";
import { isUrl, sourceName } from "../format";
import type { PdfDocument } from "./pdf";

export type ViewTarget = {
  document_id: string;
  title: string;
  source: string;
  page: number | null;
  text?: string;
  location?: Location;
};

type Mode =
  | { kind: "loading" }
  | { kind: "pdf"; doc: PdfDocument }
  | { kind: "text"; doc: DocumentText }
  | { kind: "passage"; reason: string };

function looksPdf(source: string): boolean {
  return /\.pdf($|[?#])/i.test(source);
}

export function DocumentViewer({ target, onClose }: { target: ViewTarget; onClose: () => void }) {
  const [mode, setMode] = useState<Mode>({ kind: "loading" });
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let live = true;
    let opened: PdfDocument | null = null;
    setMode({ kind: "loading" });
    void (async () => {
      const id = encodeURIComponent(target.document_id);
      if (looksPdf(target.source)) {
        try {
          const response = await apiFetch(`/v1/documents/${id}/file`);
          if ((response.headers.get("Content-Type") ?? "").includes("pdf")) {
            const data = await response.arrayBuffer();
            const { openPdf } = await import("./pdf");
            opened = await openPdf(data);
            if (live) setMode({ kind: "pdf", doc: opened });
            return;
          }
        } catch {
          // Fall through to the extracted text.
        }
      }
      try {
        const doc = await api<DocumentText>(`/v1/documents/${id}/text`, {
          query: { page: target.page ?? undefined },
        });
        if (live) setMode({ kind: "text", doc });
      } catch (e) {
        if (live) setMode({ kind: "passage", reason: messageOf(e) });
      }
    })();
    return () => {
      live = false;
      void opened?.destroy();
    };
  }, [target, attempt]);

  return (
    <Dialog title={target.title || sourceName(target.source)} onClose={onClose} wide class="viewer">
      <div class="viewer-meta">
      <p class="viewer-source muted">
        {isUrl(target.source) ? (
          <a href={target.source} target="_blank" rel="noopener noreferrer">
            {target.source}
          </a>
        ) : (
          sourceName(target.source)
        )}
        {target.page !== null && <> · page {target.page}</>}
      </p>
        <OpenOriginal documentId={target.document_id} />
      </div>
      {mode.kind === "loading" && <Loading label="Opening the document…" />}
      {mode.kind === "pdf" && <PdfPages doc={mode.doc} target={target} />}
      {mode.kind === "text" && <MarkedText doc={mode.doc} target={target} />}
      {mode.kind === "passage" && (
        <div>
          <p role="status" class="notice">
            The original document is not available; showing the cited passage.
          </p>
          <p class="muted small">{mode.reason}</p>
          {target.text ? (
            <blockquote class="passage">
              <mark data-testid="highlight">{target.text}</mark>
            </blockquote>
          ) : (
            <ErrorMessage error="There is no passage to show." onRetry={() => setAttempt(attempt + 1)} />
          )}
        </div>
      )}
    </Dialog>
  );
}

/** The original file in a new tab: a one-minute ticket opens it without the bearer header. */
function OpenOriginal({ documentId }: { documentId: string }) {
  const [error, setError] = useState<string | null>(null);
  const open = async () => {
    setError(null);
    try {
      const ticket = await api<{ url: string }>("/v1/auth/tickets", {
        method: "POST",
        json: { path: `/v1/documents/${encodeURIComponent(documentId)}/file` },
      });
      window.open(ticket.url, "_blank", "noopener");
    } catch (e) {
      setError(messageOf(e));
    }
  };
  return (
    <span class="open-original">
      <button type="button" class="button small ghost" onClick={() => void open()}>
        Open original
      </button>
      {error && (
        <span role="alert" class="error-text small">
          {error}
        </span>
      )}
    </span>
  );
}

function PdfPages({ doc, target }: { doc: PdfDocument; target: ViewTarget }) {
  const total = doc.numPages;
  const [page, setPage] = useState(() => Math.min(Math.max(1, target.page ?? 1), total));
  const [scale, setScale] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const frame = useRef<HTMLDivElement>(null);
  const task = useRef({ task: null as import("pdfjs-dist").RenderTask | null });

  useEffect(() => {
    let live = true;
    setScale(null);
    setError(null);
    void (async () => {
      try {
        const { renderPage } = await import("./pdf");
        const width = Math.max(260, (frame.current?.parentElement?.clientWidth ?? 800) - 24);
        const rendered = await renderPage(doc, page, canvas.current!, width, task.current);
        if (live) setScale(rendered.scale);
      } catch (e) {
        const name = (e as { name?: string }).name;
        if (live && name !== "RenderingCancelledException") setError(messageOf(e));
      }
    })();
    return () => {
      live = false;
    };
  }, [doc, page]);

  const boxes = page === target.page && scale !== null ? (target.location?.boxes ?? []) : [];

  useEffect(() => {
    if (boxes.length > 0) frame.current?.querySelector(".pdf-highlight")?.scrollIntoView({ block: "center" });
  }, [scale, page]);

  return (
    <div class="pdf-view">
      <div class="pdf-toolbar">
        <button type="button" class="button small" disabled={page <= 1} onClick={() => setPage(page - 1)}>
          Previous page
        </button>
        <span role="status" aria-live="polite">
          Page {page} of {total}
        </span>
        <button type="button" class="button small" disabled={page >= total} onClick={() => setPage(page + 1)}>
          Next page
        </button>
        {target.page !== null && page !== target.page && (
          <button type="button" class="button small ghost" onClick={() => setPage(target.page!)}>
            Back to the cited page
          </button>
        )}
      </div>
      <ErrorMessage error={error} />
      <div class="pdf-scroll" tabIndex={0} aria-label="Document page">
        <div class="pdf-frame" ref={frame}>
          <canvas ref={canvas} role="img" aria-label={`Page ${page} of ${total}`} />
          {boxes.map(([l, t, r, b], i) => (
            <div
              key={i}
              class="pdf-highlight"
              data-testid="highlight"
              style={{
                left: `${l * scale!}px`,
                top: `${t * scale!}px`,
                width: `${Math.max(2, (r - l) * scale!)}px`,
                height: `${Math.max(2, (b - t) * scale!)}px`,
              }}
            />
          ))}
        </div>
      </div>
      {target.text && page === target.page && (
        <details class="passage-details">
          <summary>Cited passage</summary>
          <blockquote class="passage">{target.text}</blockquote>
        </details>
      )}
    </div>
  );
}

function pieces(text: string, spans: [number, number][]): { text: string; marked: boolean }[] {
  const sorted = spans
    .map(([s, e]) => [Math.max(0, s), Math.min(text.length, e)] as [number, number])
    .filter(([s, e]) => e > s)
    .sort((a, b) => a[0] - b[0]);
  const out: { text: string; marked: boolean }[] = [];
  let at = 0;
  for (const [s, e] of sorted) {
    const start = Math.max(s, at);
    if (e <= start) continue;
    if (start > at) out.push({ text: text.slice(at, start), marked: false });
    out.push({ text: text.slice(start, e), marked: true });
    at = e;
  }
  if (at < text.length) out.push({ text: text.slice(at), marked: false });
  return out;
}

function MarkedText({ doc, target }: { doc: DocumentText; target: ViewTarget }) {
  const ref = useRef<HTMLDivElement>(null);
  let spans = target.location?.spans ?? [];
  if (spans.length === 0 && target.text) {
    // No spans (an older index): mark the passage where its text occurs.
    const at = doc.text.indexOf(target.text.trim());
    if (at >= 0) spans = [[at, at + target.text.trim().length]];
  }
  const parts = pieces(doc.text, spans);
  useEffect(() => {
    ref.current?.querySelector("mark")?.scrollIntoView({ block: "center" });
  }, [doc]);
  return (
    <div class="doc-text" ref={ref} tabIndex={0} aria-label="Document text">
      {doc.page !== null && doc.pages !== null && (
        <p class="muted small">
          Page {doc.page} of {doc.pages}
        </p>
      )}
      {parts.length === 0 && <p class="muted">This document has no text.</p>}
      {parts.map((p, i) =>
        p.marked ? (
          <mark key={i} data-testid="highlight">
            {p.text}
          </mark>
        ) : (
          <span key={i}>{p.text}</span>
        ),
      )}
    </div>
  );
}
