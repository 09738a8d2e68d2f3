import { useCallback, useEffect, useState } from "preact/hooks";
import { api, download, messageOf } from "../api";
import { useSession } from "../session";
import type { EvalRun, FeedbackItem } from "../types";
import { CorpusSelect, Empty, ErrorMessage, Loading } from "../components/ui";
import { href } from "../router";
import { shortId, sourceName, when } from "../format";

type Export = { suite: Record<string, unknown>; cases: Record<string, unknown>[] };

export function FeedbackScreen() {
  const { corpora } = useSession();
  const [rating, setRating] = useState("down");
  const [corpus, setCorpus] = useState("");
  const [items, setItems] = useState<FeedbackItem[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);
  const [run, setRun] = useState<EvalRun | null>(null);

  const load = useCallback(async () => {
    setItems(null);
    try {
      setItems(await api<FeedbackItem[]>("/v1/evals/feedback", { query: { rating, corpus } }));
      setError(null);
    } catch (e) {
      setError(messageOf(e));
    }
  }, [rating, corpus]);

  useEffect(() => {
    void load();
  }, [load]);

  const exported = () => api<Export>("/v1/evals/feedback/export", { query: { rating: rating || undefined, corpus } });

  const exportIt = async () => {
    setBusy(true);
    setActionError(null);
    try {
      const data = await exported();
      download(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }), `lore-feedback-${rating || "all"}.json`);
    } catch (e) {
      setActionError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };

  const runIt = async () => {
    setBusy(true);
    setActionError(null);
    setRun(null);
    try {
      const data = await exported();
      setRun(await api<EvalRun>("/v1/evals/runs", { method: "POST", json: { suite: data.suite, cases: data.cases } }));
    } catch (e) {
      setActionError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="page">
      <div class="page-head">
        <h1>Feedback</h1>
        <p class="muted">What readers said about answers. Turn the unhelpful ones into an eval dataset, so a fix stays fixed.</p>
      </div>
      <div class="toolbar">
        <div class="field">
          <label for="feedback-rating">Rating</label>
          <select id="feedback-rating" value={rating} onChange={(e) => setRating(e.currentTarget.value)}>
            <option value="down">Not helpful</option>
            <option value="up">Helpful</option>
            <option value="">All</option>
          </select>
        </div>
        <CorpusSelect corpora={corpora} value={corpus} onChange={setCorpus} allLabel="All corpora" id="feedback-corpus" />
        <div class="toolbar-actions">
          <button type="button" class="button" disabled={busy || !items?.length} onClick={() => void exportIt()}>
            Export as eval dataset
          </button>
          <button type="button" class="button primary" disabled={busy || !items?.length} onClick={() => void runIt()}>
            Run as eval
          </button>
        </div>
      </div>
      <ErrorMessage error={actionError} />
      {run && (
        <p role="status" class="notice">
          Run {shortId(run.id)} started. <a href={href("evals", run.id)}>Open run</a>
        </p>
      )}
      <ErrorMessage error={error} onRetry={() => void load()} />
      {items === null && !error && <Loading />}
      {items && items.length === 0 && (
        <Empty>
          <p>No feedback{rating ? ` rated “${rating === "down" ? "not helpful" : "helpful"}”` : ""} yet.</p>
        </Empty>
      )}
      {items && items.length > 0 && (
        <ul class="feedback-list">
          {items.map((f) => (
            <li key={f.message_id} class="card feedback-item" data-testid="feedback-item">
              <div class="feedback-meta small muted">
                <span class={`badge ${f.rating === "down" ? "state-failed" : "state-succeeded"}`}>{f.rating === "down" ? "Not helpful" : "Helpful"}</span>
                <span>{f.username}</span>
                <span>{when(f.created_at)}</span>
              </div>
              <h2 class="feedback-question">{f.question}</h2>
              <p class="feedback-answer">{f.answer}</p>
              {f.comment && (
                <blockquote class="feedback-comment-text">
                  <span class="sr-only">Comment: </span>
                  {f.comment}
                </blockquote>
              )}
              {f.citations?.length > 0 && (
                <p class="small muted">
                  Sources: {f.citations.map((c) => `[${c.n}] ${c.title || sourceName(c.source)}`).join(" · ")}
                </p>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
