import { useEffect, useState } from "preact/hooks";
import { api, messageOf } from "../../api";
import { useSession } from "../../session";
import type { Corpus, JobAccepted } from "../../types";
import { ConfirmDialog, Dialog, Empty, ErrorMessage } from "../../components/ui";
import { JobProgress } from "../../components/job";
import { when } from "../../format";
import { href } from "../../router";

export function CorporaScreen() {
  const { corpora, corporaError, reloadCorpora } = useSession();
  const [name, setName] = useState("");
  const [createError, setCreateError] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<string | null>(null);
  const [renaming, setRenaming] = useState<Corpus | null>(null);
  const [deleting, setDeleting] = useState<Corpus | null>(null);
  const [reindexing, setReindexing] = useState<Corpus | null>(null);
  const [loaded, setLoaded] = useState(false);

  useEffect(() => {
    void reloadCorpora().then(() => setLoaded(true));
  }, [reloadCorpora]);

  const create = async (e: Event) => {
    e.preventDefault();
    setCreating(true);
    setCreateError(null);
    try {
      const c = await api<Corpus>("/v1/corpora", { method: "POST", json: { name: name.trim() } });
      setName("");
      setCreated(c.name);
      await reloadCorpora();
    } catch (err) {
      setCreateError(messageOf(err));
    } finally {
      setCreating(false);
    }
  };

  return (
    <section class="page">
      <div class="page-head">
        <h1>Corpora</h1>
        <p class="muted">A corpus is a set of documents people are granted together. Create one, then add documents in Ingest.</p>
      </div>
      <form class="card inline-form" onSubmit={create} aria-label="New corpus">
        <div class="field grow">
          <label for="corpus-name">Corpus name</label>
          <input
            id="corpus-name"
            value={name}
            onInput={(e) => setName(e.currentTarget.value)}
            placeholder="handbook"
            required
            aria-describedby="corpus-name-hint"
          />
          <span id="corpus-name-hint" class="hint">
            Letters, digits, “.”, “-” and “_”; starts with a letter or digit.
          </span>
        </div>
        <button type="submit" class="button primary" disabled={creating || !name.trim()}>
          Create corpus
        </button>
      </form>
      <ErrorMessage error={createError} />
      {created && (
        <p class="notice" role="status">
          Corpus {created} created. <a href="#/admin/ingest">Add documents</a>.
        </p>
      )}
      <ErrorMessage error={corporaError} onRetry={() => void reloadCorpora()} />
      {loaded && corpora.length === 0 && !corporaError ? (
        <Empty>
          <p>No corpora yet. Create the first one above.</p>
        </Empty>
      ) : (
        <div class="table-wrap">
          <table>
            <caption>Corpora</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col" class="num">Documents</th>
                <th scope="col" class="num hide-sm">Version</th>
                <th scope="col" class="hide-sm">Created</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {corpora.map((c) => (
                <tr key={c.id}>
                  <th scope="row">
                    <a href={`${href("admin", "documents")}?corpus=${encodeURIComponent(c.name)}`}>{c.name}</a>
                  </th>
                  <td class="num">{c.documents}</td>
                  <td class="num hide-sm">{c.version}</td>
                  <td class="hide-sm">{when(c.created_at)}</td>
                  <td class="row-buttons">
                    <button type="button" class="button small" aria-label={`Rename ${c.name}`} onClick={() => setRenaming(c)}>
                      Rename
                    </button>
                    <button type="button" class="button small" aria-label={`Re-index ${c.name}`} onClick={() => setReindexing(c)}>
                      Re-index
                    </button>
                    <button type="button" class="button small danger-ghost" aria-label={`Delete ${c.name}`} onClick={() => setDeleting(c)}>
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {renaming && (
        <RenameCorpus
          corpus={renaming}
          onDone={() => setRenaming(null)}
          onChanged={() => {
            setCreated(null);
            return reloadCorpora();
          }}
        />
      )}
      {deleting && (
        <DeleteCorpus
          corpus={deleting}
          onDone={() => setDeleting(null)}
          onChanged={() => {
            setCreated(null);
            return reloadCorpora();
          }}
        />
      )}
      {reindexing && <ReindexCorpus corpus={reindexing} onDone={() => setReindexing(null)} onChanged={reloadCorpora} />}
    </section>
  );
}

function RenameCorpus({ corpus, onDone, onChanged }: { corpus: Corpus; onDone: () => void; onChanged: () => Promise<void> }) {
  const [name, setName] = useState(corpus.name);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      await api(`/v1/corpora/${encodeURIComponent(corpus.id)}`, { method: "PATCH", json: { name: name.trim() } });
      await onChanged();
      onDone();
    } catch (err) {
      setError(messageOf(err));
      setBusy(false);
    }
  };
  return (
    <Dialog title={`Rename corpus ${corpus.name}`} onClose={onDone}>
      <form onSubmit={submit} class="stack">
        <div class="field">
          <label for="rename-corpus">New name</label>
          <input id="rename-corpus" value={name} onInput={(e) => setName(e.currentTarget.value)} required autoFocus />
        </div>
        <p class="hint">Grants, conversations and jobs follow the corpus to its new name.</p>
        <ErrorMessage error={error} />
        <div class="actions">
          <button type="submit" class="button primary" disabled={busy || !name.trim() || name.trim() === corpus.name}>
            Rename
          </button>
          <button type="button" class="button" onClick={onDone}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function DeleteCorpus({ corpus, onDone, onChanged }: { corpus: Corpus; onDone: () => void; onChanged: () => Promise<void> }) {
  const [typed, setTyped] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const confirm = async () => {
    setBusy(true);
    try {
      await api(`/v1/corpora/${encodeURIComponent(corpus.id)}`, { method: "DELETE" });
      await onChanged();
      onDone();
    } catch (err) {
      setError(messageOf(err));
      setBusy(false);
    }
  };
  return (
    <ConfirmDialog
      title={`Delete corpus ${corpus.name}?`}
      confirmLabel="Delete corpus"
      onConfirm={() => void confirm()}
      onCancel={onDone}
      busy={busy}
      error={error}
      confirmDisabled={typed !== corpus.name}
    >
      <p>
        This deletes its {corpus.documents} document{corpus.documents === 1 ? "" : "s"}, their chunks and uploaded files, and every
        grant to it. It cannot be undone.
      </p>
      <div class="field">
        <label for="delete-corpus-confirm">Type {corpus.name} to confirm</label>
        <input
          id="delete-corpus-confirm"
          value={typed}
          onInput={(e) => setTyped(e.currentTarget.value)}
          autoComplete="off"
          spellcheck={false}
          autoFocus
        />
      </div>
    </ConfirmDialog>
  );
}

function ReindexCorpus({ corpus, onDone, onChanged }: { corpus: Corpus; onDone: () => void; onChanged: () => Promise<void> }) {
  const [model, setModel] = useState("");
  const [chunkTokens, setChunkTokens] = useState("");
  const [overlap, setOverlap] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [jobId, setJobId] = useState<string | null>(null);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const body: Record<string, unknown> = {};
    if (model.trim()) body.model = model.trim();
    if (chunkTokens) body.chunk_tokens = Number(chunkTokens);
    if (overlap) body.chunk_overlap_tokens = Number(overlap);
    try {
      const job = await api<JobAccepted>(`/v1/corpora/${encodeURIComponent(corpus.id)}/reindex`, { method: "POST", json: body });
      setJobId(job.id);
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog title={`Re-index ${corpus.name}`} onClose={onDone}>
      {jobId ? (
        <div class="stack">
          <p>The new index is built beside the serving one; questions keep being answered meanwhile.</p>
          <JobProgress jobId={jobId} onFinished={() => void onChanged()} />
        </div>
      ) : (
        <form onSubmit={submit} class="stack">
          <p class="muted small">Leave a field empty to keep what the corpus has now.</p>
          <div class="field">
            <label for="reindex-model">Embedding model (optional)</label>
            <input id="reindex-model" value={model} onInput={(e) => setModel(e.currentTarget.value)} placeholder="sentence-transformers/all-MiniLM-L6-v2" />
          </div>
          <div class="field-row">
            <div class="field">
              <label for="reindex-tokens">Chunk tokens (optional)</label>
              <input id="reindex-tokens" type="number" min={8} max={8192} value={chunkTokens} onInput={(e) => setChunkTokens(e.currentTarget.value)} />
            </div>
            <div class="field">
              <label for="reindex-overlap">Chunk overlap tokens (optional)</label>
              <input id="reindex-overlap" type="number" min={0} max={4096} value={overlap} onInput={(e) => setOverlap(e.currentTarget.value)} />
            </div>
          </div>
          <ErrorMessage error={error} />
          <div class="actions">
            <button type="submit" class="button primary" disabled={busy}>
              Start re-index
            </button>
            <button type="button" class="button" onClick={onDone}>
              Cancel
            </button>
          </div>
        </form>
      )}
    </Dialog>
  );
}
