import { useEffect, useRef, useState } from "preact/hooks";
import { api, messageOf, uploadWithProgress } from "../../api";
import { useSession } from "../../session";
import type { JobAccepted } from "../../types";
import { CorpusSelect, ErrorMessage, lines } from "../../components/ui";
import { JobProgress } from "../../components/job";
import { bytes } from "../../format";
import { Close } from "../../components/icons";

export function IngestScreen() {
  const { corpora, reloadCorpora } = useSession();
  const [corpus, setCorpus] = useState("");
  useEffect(() => {
    if (!corpus && corpora.length) setCorpus(corpora[0].name);
  }, [corpora]);
  // Corpus routes take the corpus's ID (stable across renames); the picker shows names.
  const corpusId = corpora.find((c) => c.name === corpus)?.id ?? "";
  return (
    <section class="page">
      <div class="page-head">
        <h1>Ingest</h1>
        <p class="muted">Add documents to a corpus by uploading files or crawling a web site. Unchanged documents are skipped.</p>
      </div>
      <div class="card">
        <CorpusSelect corpora={corpora} value={corpus} onChange={setCorpus} id="ingest-corpus" required />
        {corpora.length === 0 && (
          <p class="notice">
            There is no corpus yet. <a href="#/admin/corpora">Create one first</a>.
          </p>
        )}
      </div>
      <div class="two-col">
        <Upload corpus={corpusId} onFinished={reloadCorpora} />
        <Crawl corpus={corpusId} onFinished={reloadCorpora} />
      </div>
    </section>
  );
}

type Picked = { file: File; loaded: number };

function Upload({ corpus, onFinished }: { corpus: string; onFinished: () => Promise<void> }) {
  const [files, setFiles] = useState<Picked[]>([]);
  const [over, setOver] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [jobId, setJobId] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);

  const add = (list: FileList | null) => {
    if (!list) return;
    const picked = Array.from(list).map((file) => ({ file, loaded: 0 }));
    setFiles((prev) => {
      const names = new Set(picked.map((p) => p.file.name));
      return [...prev.filter((p) => !names.has(p.file.name)), ...picked];
    });
    setJobId(null);
  };

  const upload = async () => {
    if (!corpus || files.length === 0) return;
    setBusy(true);
    setError(null);
    setJobId(null);
    const form = new FormData();
    for (const p of files) form.append("files", p.file, p.file.name);
    const sizes = files.map((p) => p.file.size);
    try {
      const accepted = await uploadWithProgress<JobAccepted>(
        `/v1/corpora/${encodeURIComponent(corpus)}/documents`,
        form,
        (loaded, total) => {
          // One multipart body carries the files in order: share the bytes sent out among them.
          const sum = sizes.reduce((a, b) => a + b, 0);
          const overhead = total > sum ? (total - sum) / sizes.length : 0;
          let left = loaded;
          setFiles((prev) =>
            prev.map((p, i) => {
              const size = sizes[i] + overhead;
              const mine = Math.max(0, Math.min(size, left));
              left -= size;
              return { ...p, loaded: Math.min(p.file.size, Math.round((mine / size) * p.file.size)) };
            }),
          );
        },
      );
      setFiles((prev) => prev.map((p) => ({ ...p, loaded: p.file.size })));
      setJobId(accepted.id);
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="card" aria-labelledby="upload-title">
      <h2 id="upload-title">Upload files</h2>
      <div
        class={`dropzone${over ? " over" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => {
          e.preventDefault();
          setOver(false);
          add(e.dataTransfer?.files ?? null);
        }}
      >
        <p class="dropzone-text">Drop files here</p>
        <p class="muted small">PDF, Word, PowerPoint, Excel, HTML, Markdown, text, CSV, e-mail, images</p>
        <label for="upload-files" class="button small">
          Choose files
        </label>
        <input
          id="upload-files"
          ref={input}
          type="file"
          multiple
          class="visually-hidden-file"
          onChange={(e) => {
            add(e.currentTarget.files);
            e.currentTarget.value = "";
          }}
        />
      </div>
      {files.length > 0 && (
        <ul class="file-list">
          {files.map((p) => (
            <li key={p.file.name}>
              <div class="file-line">
                <span class="file-name">{p.file.name}</span>
                <span class="muted small">{bytes(p.file.size)}</span>
                {!busy && !jobId && (
                  <button
                    type="button"
                    class="icon-button"
                    aria-label={`Remove ${p.file.name}`}
                    onClick={() => setFiles((prev) => prev.filter((x) => x !== p))}
                  >
                    <Close />
                  </button>
                )}
              </div>
              {(busy || jobId) && (
                <progress aria-label={`Uploading ${p.file.name}`} max={Math.max(1, p.file.size)} value={p.loaded} />
              )}
            </li>
          ))}
        </ul>
      )}
      <ErrorMessage error={error} onRetry={files.length ? () => void upload() : undefined} />
      <div class="actions">
        <button type="button" class="button primary" disabled={busy || !corpus || files.length === 0} onClick={() => void upload()}>
          {busy ? "Uploading…" : "Upload"}
        </button>
        {jobId && !busy && (
          <button
            type="button"
            class="button ghost"
            onClick={() => {
              setFiles([]);
              setJobId(null);
            }}
          >
            Clear
          </button>
        )}
      </div>
      {jobId && <JobProgress jobId={jobId} onFinished={() => void onFinished()} />}
    </section>
  );
}

function Crawl({ corpus, onFinished }: { corpus: string; onFinished: () => Promise<void> }) {
  const [urls, setUrls] = useState("");
  const [maxPages, setMaxPages] = useState("");
  const [maxDepth, setMaxDepth] = useState("");
  const [include, setInclude] = useState("");
  const [exclude, setExclude] = useState("");
  const [hosts, setHosts] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [jobId, setJobId] = useState<string | null>(null);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setJobId(null);
    const body: Record<string, unknown> = { urls: lines(urls) };
    if (maxPages) body.max_pages = Number(maxPages);
    if (maxDepth) body.max_depth = Number(maxDepth);
    if (include.trim()) body.include_patterns = lines(include);
    if (exclude.trim()) body.exclude_patterns = lines(exclude);
    if (hosts.trim()) body.allow_hosts = lines(hosts);
    try {
      const job = await api<JobAccepted>(`/v1/corpora/${encodeURIComponent(corpus)}/crawls`, { method: "POST", json: body });
      setJobId(job.id);
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="card" aria-labelledby="crawl-title">
      <h2 id="crawl-title">Crawl a web site</h2>
      <form onSubmit={submit} class="stack">
        <div class="field">
          <label for="crawl-urls">Start URLs (one per line)</label>
          <textarea id="crawl-urls" rows={3} value={urls} onInput={(e) => setUrls(e.currentTarget.value)} placeholder="https://docs.example.com/" required />
          <span class="hint">Pages, sitemaps or sitemap indexes; the crawl stays on their sites.</span>
        </div>
        <div class="field-row">
          <div class="field">
            <label for="crawl-pages">Max pages</label>
            <input id="crawl-pages" type="number" min={1} value={maxPages} onInput={(e) => setMaxPages(e.currentTarget.value)} placeholder="default" />
          </div>
          <div class="field">
            <label for="crawl-depth">Max depth</label>
            <input id="crawl-depth" type="number" min={0} max={50} value={maxDepth} onInput={(e) => setMaxDepth(e.currentTarget.value)} placeholder="default" />
          </div>
        </div>
        <div class="advanced">
          <div class="field">
            <label for="crawl-include">Include patterns (one per line)</label>
            <textarea id="crawl-include" rows={2} value={include} onInput={(e) => setInclude(e.currentTarget.value)} placeholder="/docs/" />
          </div>
          <div class="field">
            <label for="crawl-exclude">Exclude patterns (one per line)</label>
            <textarea id="crawl-exclude" rows={2} value={exclude} onInput={(e) => setExclude(e.currentTarget.value)} placeholder="/changelog/" />
          </div>
          <div class="field">
            <label for="crawl-hosts">Allowed hosts (one per line)</label>
            <textarea id="crawl-hosts" rows={2} value={hosts} onInput={(e) => setHosts(e.currentTarget.value)} placeholder="intranet.local" />
            <span class="hint">Private or loopback hosts the crawler may reach; patterns are regular expressions.</span>
          </div>
        </div>
        <ErrorMessage error={error} />
        <div class="actions">
          <button type="submit" class="button primary" disabled={busy || !corpus || !urls.trim()}>
            Start crawl
          </button>
        </div>
      </form>
      {jobId && <JobProgress jobId={jobId} onFinished={() => void onFinished()} />}
    </section>
  );
}
