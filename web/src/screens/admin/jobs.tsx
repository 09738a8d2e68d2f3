import { useCallback, useEffect, useState } from "preact/hooks";
import { api, messageOf } from "../../api";
import { useSession } from "../../session";
import type { Job, JobAccepted, JobDocument } from "../../types";
import { CorpusSelect, Empty, ErrorMessage, Loading, StateBadge } from "../../components/ui";
import { JobProgressView, useJob } from "../../components/job";
import { FINAL_JOB_STATES, shortId, sourceName, when } from "../../format";
import { href, navigate } from "../../router";

export function JobsScreen() {
  const { corpora } = useSession();
  const [corpus, setCorpus] = useState("");
  const [jobs, setJobs] = useState<Job[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setJobs(await api<Job[]>("/v1/jobs", { query: { corpus } }));
      setError(null);
    } catch (e) {
      setError(messageOf(e));
    }
  }, [corpus]);

  useEffect(() => {
    void load();
  }, [load]);

  // Keep the list moving while any job runs.
  const running = jobs?.some((j) => !FINAL_JOB_STATES.has(j.state));
  useEffect(() => {
    if (!running) return;
    const t = window.setInterval(() => void load(), 3000);
    return () => window.clearInterval(t);
  }, [running, load]);

  return (
    <section class="page">
      <div class="page-head">
        <h1>Jobs</h1>
        <p class="muted">Uploads, crawls and re-indexes, newest first.</p>
      </div>
      <div class="toolbar">
        <CorpusSelect corpora={corpora} value={corpus} onChange={setCorpus} allLabel="All corpora" id="jobs-corpus" />
        <button type="button" class="button" onClick={() => void load()}>
          Refresh
        </button>
      </div>
      <ErrorMessage error={error} onRetry={() => void load()} />
      {jobs === null && !error && <Loading />}
      {jobs && jobs.length === 0 && (
        <Empty>
          <p>
            No jobs yet. <a href="#/admin/ingest">Upload files or start a crawl</a>.
          </p>
        </Empty>
      )}
      {jobs && jobs.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption>Jobs</caption>
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Kind</th>
                <th scope="col">Corpus</th>
                <th scope="col">State</th>
                <th scope="col">Documents</th>
                <th scope="col" class="num hide-sm">Failed</th>
                <th scope="col" class="hide-sm">Started</th>
              </tr>
            </thead>
            <tbody>
              {jobs.map((j) => (
                <tr key={j.id} data-testid="job-row">
                  <td>
                    <a href={href("admin", "jobs", j.id)} class="mono">
                      {shortId(j.id)}
                    </a>
                  </td>
                  <td>{j.kind}</td>
                  <td>{j.corpus}</td>
                  <td>
                    <StateBadge state={j.state} />
                  </td>
                  <td>
                    {j.documents_done} of {j.documents_total}
                  </td>
                  <td class={`num hide-sm${j.documents_failed ? " bad" : ""}`}>{j.documents_failed}</td>
                  <td class="hide-sm">{when(j.started_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

const STATUSES = ["new", "changed", "unchanged", "failed"];

export function JobDetailScreen({ id }: { id: string }) {
  const [docs, setDocs] = useState<JobDocument[] | null>(null);
  const [docsError, setDocsError] = useState<string | null>(null);
  const [status, setStatus] = useState("");
  const [actionError, setActionError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const { job, error, refresh } = useJob(id, (doc) => {
    if (status && doc.status !== status) return;
    setDocs((prev) => {
      const list = prev ?? [];
      if (doc.seq !== null && list.some((d) => d.seq === doc.seq)) return list;
      return [...list, doc];
    });
  });

  const loadDocs = useCallback(async () => {
    try {
      setDocs(await api<JobDocument[]>(`/v1/jobs/${encodeURIComponent(id)}/documents`, { query: { status } }));
      setDocsError(null);
    } catch (e) {
      setDocsError(messageOf(e));
    }
  }, [id, status]);

  useEffect(() => {
    void loadDocs();
  }, [loadDocs]);

  const finished = job && FINAL_JOB_STATES.has(job.state);
  useEffect(() => {
    if (finished) void loadDocs();
  }, [finished]);

  const act = async (what: "cancel" | "retry") => {
    setBusy(true);
    setActionError(null);
    try {
      const result = await api<JobAccepted | Job>(`/v1/jobs/${encodeURIComponent(id)}/${what}`, { method: "POST" });
      if (what === "retry" && result && "id" in result && result.id !== id) navigate(href("admin", "jobs", result.id));
      else refresh();
    } catch (e) {
      setActionError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="page">
      <p class="crumbs">
        <a href="#/admin/jobs">Jobs</a> <span aria-hidden="true">/</span>
      </p>
      <div class="page-head">
        <h1>Job {shortId(id)}</h1>
        {job && (
          <p class="muted">
            {job.kind} into <strong>{job.corpus}</strong>, started {when(job.started_at)}
            {job.finished_at && <>, finished {when(job.finished_at)}</>}
            {job.retry_of && (
              <>
                {" "}
                · retry of <a href={href("admin", "jobs", job.retry_of)}>{shortId(job.retry_of)}</a>
              </>
            )}
          </p>
        )}
      </div>
      {!job && !error && <Loading />}
      <JobProgressView job={job} error={error} showLink={false} />
      <div class="actions">
        {job && !finished && (
          <button type="button" class="button danger" disabled={busy} onClick={() => void act("cancel")}>
            Cancel job
          </button>
        )}
        {job && finished && job.documents_failed > 0 && job.kind !== "upload" && (
          <button type="button" class="button" disabled={busy} onClick={() => void act("retry")}>
            Retry failed documents
          </button>
        )}
        {job && finished && job.documents_failed > 0 && job.kind === "upload" && (
          <p class="hint">Uploaded files are not kept after their job: upload the failed ones again in Ingest.</p>
        )}
      </div>
      <ErrorMessage error={actionError} />
      {job?.failures && job.failures.length > 0 && (
        <div class="card failures">
          <h2>Failures</h2>
          <ul>
            {job.failures.map((f, i) => (
              <li key={i}>
                <span class="path mono small" title={f.source}>{sourceName(f.source)}</span>
                <span class="error-text">{f.error ?? "failed"}</span>
              </li>
            ))}
          </ul>
        </div>
      )}
      <div class="toolbar">
        <div class="field">
          <label for="job-status">Status</label>
          <select id="job-status" value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
            <option value="">All</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
      </div>
      <ErrorMessage error={docsError} onRetry={() => void loadDocs()} />
      {docs && docs.length === 0 && (
        <Empty>
          <p>{status ? `No ${status} documents.` : "No documents recorded yet."}</p>
        </Empty>
      )}
      {docs && docs.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption>Documents</caption>
            <thead>
              <tr>
                <th scope="col" class="num">#</th>
                <th scope="col">Source</th>
                <th scope="col">Status</th>
                <th scope="col">Stage</th>
                <th scope="col" class="num">Chunks</th>
                <th scope="col">Error</th>
              </tr>
            </thead>
            <tbody>
              {docs.map((d, i) => (
                <tr key={d.seq ?? `i${i}`} data-testid="job-document">
                  <td class="num">{d.seq ?? "—"}</td>
                  <td><span class="path" title={d.source}>{sourceName(d.source)}</span></td>
                  <td>
                    <StateBadge state={d.status} />
                  </td>
                  <td>{d.stage ?? "—"}</td>
                  <td class="num">{d.chunks}</td>
                  <td class="error-text">{d.error ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
