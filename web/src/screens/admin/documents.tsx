import { useCallback, useEffect, useState } from "preact/hooks";
import { api, messageOf } from "../../api";
import { useSession } from "../../session";
import type { DocumentInfo } from "../../types";
import { ConfirmDialog, CorpusSelect, Empty, ErrorMessage, Loading } from "../../components/ui";
import { DocumentViewer, type ViewTarget } from "../../components/viewer";
import { isUrl, sourceName, when } from "../../format";

const TYPES = ["pdf", "image", "markdown", "html", "text", "docx", "pptx", "xlsx", "csv", "email"];
const PAGE = 25;

function typeOf(d: DocumentInfo): string {
  if (typeof d.doc_type === "string" && d.doc_type) return d.doc_type;
  const m = /\.([a-z0-9]+)(?:$|[?#])/i.exec(d.source);
  if (isUrl(d.source) && !m) return "html";
  return m ? m[1].toLowerCase() : "—";
}

export function DocumentsScreen({ query }: { query: URLSearchParams }) {
  const { corpora } = useSession();
  const [corpus, setCorpus] = useState(query.get("corpus") ?? "");
  const [q, setQ] = useState("");
  const [typed, setTyped] = useState("");
  const [docType, setDocType] = useState("");
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<{ total: number; documents: DocumentInfo[] } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [viewing, setViewing] = useState<ViewTarget | null>(null);
  const [deleting, setDeleting] = useState<DocumentInfo | null>(null);
  const [deleteError, setDeleteError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!corpus && corpora.length) setCorpus(corpora[0].name);
  }, [corpora]);

  // Filter as the admin types, a moment after the last key.
  useEffect(() => {
    const t = window.setTimeout(() => {
      setQ(typed.trim());
      setOffset(0);
    }, 300);
    return () => window.clearTimeout(t);
  }, [typed]);

  const corpusId = corpora.find((c) => c.name === corpus)?.id ?? "";

  const load = useCallback(async () => {
    if (!corpusId) return;
    setLoading(true);
    try {
      setPage(
        await api<{ total: number; documents: DocumentInfo[] }>("/v1/documents", {
          query: { corpus_id: corpusId, q, doc_type: docType, limit: PAGE, offset },
        }),
      );
      setError(null);
    } catch (e) {
      setError(messageOf(e));
      setPage(null);
    } finally {
      setLoading(false);
    }
  }, [corpusId, q, docType, offset]);

  useEffect(() => {
    void load();
  }, [load]);

  const remove = async () => {
    if (!deleting) return;
    setBusy(true);
    try {
      await api(`/v1/documents/${encodeURIComponent(deleting.id)}`, { method: "DELETE" });
      setDeleting(null);
      setDeleteError(null);
      await load();
    } catch (e) {
      setDeleteError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };

  const total = page?.total ?? 0;

  return (
    <section class="page">
      <div class="page-head">
        <h1>Documents</h1>
        <p class="muted">What each corpus holds. Open a document to read its extracted text, or delete it.</p>
      </div>
      <div class="toolbar">
        <CorpusSelect
          corpora={corpora}
          value={corpus}
          onChange={(v) => {
            setCorpus(v);
            setOffset(0);
          }}
          id="documents-corpus"
        />
        <div class="field grow">
          <label for="documents-q">Filter by title or source</label>
          <input id="documents-q" type="search" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} placeholder="handbook, https://…" />
        </div>
        <div class="field">
          <label for="documents-type">Type</label>
          <select
            id="documents-type"
            value={docType}
            onChange={(e) => {
              setDocType(e.currentTarget.value);
              setOffset(0);
            }}
          >
            <option value="">All types</option>
            {TYPES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </div>
      </div>
      <ErrorMessage error={error} onRetry={() => void load()} />
      {corpora.length === 0 && (
        <Empty>
          <p>
            No corpora yet. <a href="#/admin/corpora">Create one</a>.
          </p>
        </Empty>
      )}
      {loading && !page && <Loading />}
      {page && (
        <>
          <p role="status" class="muted small">
            {total} document{total === 1 ? "" : "s"}
            {loading ? " · updating…" : ""}
          </p>
          {page.documents.length === 0 ? (
            <Empty>
              <p>{q || docType ? "No document matches this filter." : "This corpus has no documents yet."}</p>
              {!q && !docType && <a href="#/admin/ingest">Add documents</a>}
            </Empty>
          ) : (
            <div class="table-wrap">
              <table>
                <caption>Documents</caption>
                <thead>
                  <tr>
                    <th scope="col">Title</th>
                    <th scope="col">Type</th>
                    <th scope="col" class="hide-sm">Source</th>
                    <th scope="col" class="num hide-sm">Pages</th>
                    <th scope="col" class="num hide-sm">Chunks</th>
                    <th scope="col" class="hide-sm">Updated</th>
                    <th scope="col">Actions</th>
                  </tr>
                </thead>
                <tbody>
                  {page.documents.map((d) => (
                    <tr key={d.id} data-testid="document-row">
                      <th scope="row">{d.title || "(untitled)"}</th>
                      <td>
                        <span class="badge">{typeOf(d)}</span>
                      </td>
                      <td class="small hide-sm"><span class="path" title={d.source}>{sourceName(d.source)}</span></td>
                      <td class="num hide-sm">{d.pages ?? "—"}</td>
                      <td class="num hide-sm">{d.chunks ?? "—"}</td>
                      <td class="small hide-sm">{when(d.updated_at)}</td>
                      <td class="row-buttons">
                        <button
                          type="button"
                          class="button small"
                          aria-label={`Open ${d.title || d.source}`}
                          onClick={() => setViewing({ document_id: d.id, title: d.title, source: d.source, page: d.pages ? 1 : null })}
                        >
                          Open
                        </button>
                        <button
                          type="button"
                          class="button small danger-ghost"
                          aria-label={`Delete ${d.title || d.source}`}
                          onClick={() => setDeleting(d)}
                        >
                          Delete
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {total > PAGE && (
            <div class="pager">
              <button type="button" class="button small" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
                Previous
              </button>
              <span class="muted small">
                {offset + 1}–{Math.min(total, offset + PAGE)} of {total}
              </span>
              <button type="button" class="button small" disabled={offset + PAGE >= total} onClick={() => setOffset(offset + PAGE)}>
                Next
              </button>
            </div>
          )}
        </>
      )}
      {viewing && <DocumentViewer target={viewing} onClose={() => setViewing(null)} />}
      {deleting && (
        <ConfirmDialog
          title="Delete document?"
          confirmLabel="Delete"
          onConfirm={() => void remove()}
          onCancel={() => {
            setDeleting(null);
            setDeleteError(null);
          }}
          busy={busy}
          error={deleteError}
        >
          <p>
            “{deleting.title || deleting.source}” and its chunks will be removed from {deleting.corpus}. Answers stop citing it at once.
          </p>
        </ConfirmDialog>
      )}
    </section>
  );
}
