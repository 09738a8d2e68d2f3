// A job's live progress: its event stream (SSE over fetch, with the bearer), else polling.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, apiFetch, messageOf } from "../api";
import { readSse } from "../sse";
import type { Job, JobDocument } from "../types";
import { FINAL_JOB_STATES } from "../format";
import { href } from "../router";
import { ErrorMessage, StateBadge } from "./ui";

export function useJob(jobId: string | null, onDocument?: (doc: JobDocument) => void) {
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [generation, setGeneration] = useState(0);
  const docCallback = useRef(onDocument);
  docCallback.current = onDocument;

  useEffect(() => {
    if (!jobId) return;
    const controller = new AbortController();
    let timer: number | undefined;
    let live = true;
    setError(null);
    const id = encodeURIComponent(jobId);

    const poll = async () => {
      try {
        const j = await api<Job>(`/v1/jobs/${id}`);
        if (!live) return;
        setJob(j);
        setError(null);
        if (!FINAL_JOB_STATES.has(j.state)) timer = window.setTimeout(poll, 1500);
      } catch (e) {
        if (!live) return;
        setError(messageOf(e));
        timer = window.setTimeout(poll, 4000);
      }
    };

    void (async () => {
      try {
        const response = await apiFetch(`/v1/jobs/${id}/events`, {
          headers: { Accept: "text/event-stream" },
          signal: controller.signal,
        });
        await readSse(
          response,
          ({ event, data }) => {
            if (!live) return;
            try {
              const payload = JSON.parse(data);
              if (event === "snapshot" || event === "progress" || event === "end") {
                setJob((prev) => ({ ...(prev ?? {}), ...payload }) as Job);
              } else if (event === "document") {
                docCallback.current?.(payload as JobDocument);
              }
            } catch {
              // A malformed event is skipped; the next snapshot corrects the view.
            }
          },
          controller.signal,
        );
      } catch {
        if (controller.signal.aborted) return;
      }
      // After the end event, one read fetches the failures; a stream that ended early or is not
      // available is replaced by polling until the job is final.
      if (live) await poll();
    })();

    return () => {
      live = false;
      controller.abort();
      window.clearTimeout(timer);
    };
  }, [jobId, generation]);

  return { job, error, refresh: () => setGeneration((g) => g + 1), setJob };
}

export function JobProgressView({ job, error, showLink = true }: { job: Job | null; error?: string | null; showLink?: boolean }) {
  const total = job?.documents_total ?? 0;
  const done = job?.documents_done ?? 0;
  const running = job && !FINAL_JOB_STATES.has(job.state);
  const label = job
    ? `${job.state}: ${done} of ${total} document${total === 1 ? "" : "s"}`
    : "Waiting for the job to start…";
  return (
    <section class="job-progress" aria-label="Job progress">
      <div class="job-progress-head">
        {job && <StateBadge state={job.state} />}
        <span role="status" aria-live="polite" class="job-progress-text">
          {label}
        </span>
      </div>
      {running && total === 0 ? (
        <progress aria-label="Job progress" />
      ) : (
        <progress aria-label="Job progress" max={Math.max(total, 1)} value={job ? (total ? done : FINAL_JOB_STATES.has(job.state) ? 1 : 0) : 0} />
      )}
      {job && (
        <p class="muted small job-counts">
          {job.documents_new} new · {job.documents_changed} changed · {job.documents_unchanged} unchanged ·{" "}
          {job.documents_failed} failed · {job.chunks_embedded} chunks
          {job.documents_per_s ? ` · ${job.documents_per_s.toFixed(1)} docs/s` : ""}
          {running && job.eta_s ? ` · about ${Math.ceil(job.eta_s)} s left` : ""}
        </p>
      )}
      {job?.error && <p class="error-text">{job.error}</p>}
      <ErrorMessage error={error ?? null} />
      {job && showLink && (
        <a href={href("admin", "jobs", job.id)} class="small">
          Open job
        </a>
      )}
    </section>
  );
}

export function JobProgress({ jobId, onFinished, showLink }: { jobId: string; onFinished?: (job: Job) => void; showLink?: boolean }) {
  const { job, error } = useJob(jobId);
  const fired = useRef(false);
  useEffect(() => {
    if (job && FINAL_JOB_STATES.has(job.state) && !fired.current) {
      fired.current = true;
      onFinished?.(job);
    }
  }, [job?.state]);
  return <JobProgressView job={job} error={error} showLink={showLink} />;
}
