import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api, download, fetchBlob, messageOf, withQuery } from "../api";
import { useSession } from "../session";
import type { EvalRun, Gate, Suite } from "../types";
import { CorpusSelect, Empty, ErrorMessage, Loading, StateBadge } from "../components/ui";
import { num, shortId, when } from "../format";
import { href, navigate } from "../router";

const RUNNING = new Set(["pending", "running", "queued"]);
const HEADLINE = [/^hit@/, /^recall@/, /^mrr$/, /^ndcg/, /faithful/, /correct/, /token_f1/, /refusal/];

function headline(metrics: Record<string, number | null> | undefined, count = 3): [string, number | null][] {
  if (!metrics) return [];
  const names = Object.keys(metrics).filter((n) => !/^latency|^tokens_/.test(n));
  const ranked = names.sort((a, b) => {
    const ia = HEADLINE.findIndex((r) => r.test(a));
    const ib = HEADLINE.findIndex((r) => r.test(b));
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
  });
  return ranked.slice(0, count).map((n) => [n, metrics[n]]);
}

function GateVerdict({ run }: { run: EvalRun }) {
  if (run.passed === null || run.passed === undefined) return <span class="muted">—</span>;
  return run.passed ? <span class="badge state-succeeded">Passed</span> : <span class="badge state-failed">Failed</span>;
}

const finishedRuns = new Map<string, EvalRun>();

function useRuns() {
  const [runs, setRuns] = useState<EvalRun[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      const list = await api<EvalRun[]>("/v1/evals/runs");
      // The list may not carry summaries: read the newest finished runs' details for their metrics.
      // A finished run never changes, so its details are read once.
      const missing = list.filter((r) => !r.summary && !RUNNING.has(r.state) && !finishedRuns.has(r.id)).slice(0, 10);
      const details = await Promise.all(
        missing.map((r) => api<EvalRun>(`/v1/evals/runs/${encodeURIComponent(r.id)}`).catch(() => null)),
      );
      for (const d of details) if (d && !RUNNING.has(d.state)) finishedRuns.set(d.id, d);
      setRuns(list.map((r) => finishedRuns.get(r.id) ?? r));
      setError(null);
    } catch (e) {
      setError(messageOf(e));
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  const running = runs?.some((r) => RUNNING.has(r.state));
  useEffect(() => {
    if (!running) return;
    const t = window.setInterval(() => void load(), 3000);
    return () => window.clearInterval(t);
  }, [running, load]);
  return { runs, error, load };
}

export function EvalRunsScreen() {
  const { runs, error, load } = useRuns();
  return (
    <section class="page">
      <div class="page-head">
        <h1>Evaluations</h1>
        <p class="muted">Run a suite of questions through Lore and see how retrieval and answers hold up, gate by gate.</p>
      </div>
      <div class="two-col">
        <StartRun runs={runs ?? []} onStarted={load} />
        <CompareForm runs={runs ?? []} a="" b="" />
      </div>
      <ErrorMessage error={error} onRetry={() => void load()} />
      {runs === null && !error && <Loading />}
      {runs && runs.length === 0 && (
        <Empty>
          <p>No runs yet. Start one from a shipped suite above.</p>
        </Empty>
      )}
      {runs && runs.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption>Runs</caption>
            <thead>
              <tr>
                <th scope="col">Run</th>
                <th scope="col">Suite</th>
                <th scope="col">State</th>
                <th scope="col">Gates</th>
                <th scope="col" class="hide-sm">Headline metrics</th>
                <th scope="col" class="hide-sm">Started</th>
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => (
                <tr key={r.id} data-testid="eval-run-row">
                  <td>
                    <a href={href("evals", r.id)} class="mono">
                      {shortId(r.id)}
                    </a>
                  </td>
                  <td>{r.suite}</td>
                  <td>
                    <StateBadge state={r.state} />
                  </td>
                  <td>
                    <GateVerdict run={r} />
                  </td>
                  <td class="small hide-sm">
                    {headline(r.summary?.metrics).map(([n, v]) => (
                      <span class="metric-chip" key={n}>
                        {n} <strong>{num(v)}</strong>
                      </span>
                    ))}
                    {r.error && <span class="error-text">{r.error}</span>}
                  </td>
                  <td class="small hide-sm">{when(r.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

type Parsed = { suite: Record<string, unknown> | null; cases: Record<string, unknown>[] };

function parseSuiteFile(name: string, text: string): Parsed {
  const trimmed = text.trim();
  if (!trimmed) throw new Error("The file is empty.");
  if (/\.jsonl$/i.test(name) || (!trimmed.startsWith("[") && !trimmed.startsWith("{")) || /\}\s*\n\s*\{/.test(trimmed)) {
    try {
      const cases = trimmed
        .split(/\r?\n/)
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      if (cases.length > 1 || /\.jsonl$/i.test(name)) return { suite: null, cases };
    } catch {
      if (/\.jsonl$/i.test(name)) throw new Error("A line of the JSONL file is not JSON.");
    }
  }
  let data: unknown;
  try {
    data = JSON.parse(trimmed);
  } catch {
    throw new Error("The file is neither JSON nor JSONL (YAML suites: use the command line, lore eval).");
  }
  if (Array.isArray(data)) return { suite: null, cases: data as Record<string, unknown>[] };
  const obj = data as Record<string, unknown>;
  if (obj.suite && typeof obj.suite === "object") {
    return { suite: obj.suite as Record<string, unknown>, cases: (obj.cases as Record<string, unknown>[]) ?? [] };
  }
  const { cases, ...suite } = obj;
  return { suite, cases: Array.isArray(cases) ? (cases as Record<string, unknown>[]) : [] };
}

function StartRun({ runs, onStarted }: { runs: EvalRun[]; onStarted: () => Promise<void> }) {
  const { corpora } = useSession();
  const [suites, setSuites] = useState<Suite[] | null>(null);
  const [suitesError, setSuitesError] = useState<string | null>(null);
  const [shipped, setShipped] = useState("");
  const [file, setFile] = useState<{ name: string; parsed: Parsed } | null>(null);
  const [fileError, setFileError] = useState<string | null>(null);
  const [corpus, setCorpus] = useState("");
  const [limit, setLimit] = useState("");
  const [baseline, setBaseline] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [started, setStarted] = useState<EvalRun | null>(null);
  const fileInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    api<Suite[]>("/v1/evals/suites")
      .then((s) => {
        setSuites(s);
        if (s.length) setShipped(s[0].name);
      })
      .catch((e) => setSuitesError(messageOf(e)));
  }, []);

  useEffect(() => {
    if (!corpus && corpora.length) setCorpus(corpora[0].name);
  }, [corpora]);

  const pickFile = async (f: File | undefined) => {
    setFileError(null);
    setFile(null);
    if (!f) return;
    try {
      setFile({ name: f.name, parsed: parseSuiteFile(f.name, await f.text()) });
    } catch (e) {
      setFileError(messageOf(e));
      if (fileInput.current) fileInput.current.value = "";
    }
  };

  const needsCorpus = file !== null && !(file.parsed.suite && file.parsed.suite.corpus);

  const start = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setStarted(null);
    const body: Record<string, unknown> = {};
    if (file) {
      const stem = file.name.replace(/\.[^.]+$/, "").replace(/[^A-Za-z0-9_-]+/g, "-") || "uploaded";
      const suite = { name: stem, ...(file.parsed.suite ?? {}) } as Record<string, unknown>;
      if (!suite.corpus) suite.corpus = corpus;
      body.suite = suite;
      if (file.parsed.cases.length) body.cases = file.parsed.cases;
    } else {
      body.shipped = shipped;
    }
    if (limit) body.limit = Number(limit);
    if (baseline) body.baseline = baseline;
    try {
      const run = await api<EvalRun>("/v1/evals/runs", { method: "POST", json: body });
      setStarted(run);
      await onStarted();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  const finished = runs.filter((r) => !RUNNING.has(r.state) && r.state !== "error");

  return (
    <section class="card" aria-labelledby="start-run-title">
      <h2 id="start-run-title">Start a run</h2>
      <form onSubmit={start} class="stack">
        <div class="field">
          <label for="eval-shipped">Shipped suite</label>
          <select id="eval-shipped" value={shipped} onChange={(e) => setShipped(e.currentTarget.value)} disabled={file !== null}>
            {suites === null && <option value="">Loading…</option>}
            {suites?.map((s) => (
              <option key={s.name} value={s.name}>
                {s.name}
              </option>
            ))}
          </select>
          {!file && suites?.find((s) => s.name === shipped)?.description && (
            <span class="hint clamp">{suites.find((s) => s.name === shipped)!.description}</span>
          )}
          <ErrorMessage error={suitesError} />
        </div>
        <div class="field">
          <label for="eval-file">Or upload a suite file (JSON or JSONL)</label>
          <input id="eval-file" ref={fileInput} type="file" accept=".json,.jsonl,application/json" onChange={(e) => void pickFile(e.currentTarget.files?.[0])} />
          <span class="hint">A suite object (with inline cases), an exported feedback dataset, or one case a line: question, reference_answer, reference_documents.</span>
          <ErrorMessage error={fileError} />
          {file && (
            <p class="small">
              {file.name}: {file.parsed.cases.length} case{file.parsed.cases.length === 1 ? "" : "s"}{" "}
              <button
                type="button"
                class="button small ghost"
                onClick={() => {
                  setFile(null);
                  if (fileInput.current) fileInput.current.value = "";
                }}
              >
                Use a shipped suite instead
              </button>
            </p>
          )}
        </div>
        {needsCorpus && <CorpusSelect corpora={corpora} value={corpus} onChange={setCorpus} label="Corpus for the uploaded cases" id="eval-corpus" />}
        <div class="field-row">
          <div class="field">
            <label for="eval-limit">Limit (questions)</label>
            <input id="eval-limit" type="number" min={1} value={limit} onInput={(e) => setLimit(e.currentTarget.value)} placeholder="all" />
          </div>
          <div class="field">
            <label for="eval-baseline">Baseline run</label>
            <select id="eval-baseline" value={baseline} onChange={(e) => setBaseline(e.currentTarget.value)}>
              <option value="">None</option>
              {finished.map((r) => (
                <option key={r.id} value={r.id}>
                  {shortId(r.id)} · {r.suite}
                </option>
              ))}
            </select>
          </div>
        </div>
        <ErrorMessage error={error} />
        {started && (
          <p role="status" class="notice">
            Run {shortId(started.id)} started: it is listed below.
          </p>
        )}
        <div class="actions">
          <button type="submit" class="button primary" disabled={busy || (!file && !shipped)}>
            Start run
          </button>
        </div>
      </form>
    </section>
  );
}

function CompareForm({ runs, a, b }: { runs: EvalRun[]; a: string; b: string }) {
  const finished = runs.filter((r) => !RUNNING.has(r.state) && r.state !== "error");
  const [runA, setRunA] = useState(a);
  const [runB, setRunB] = useState(b);
  const touched = useRef(!!(a && b));
  useEffect(() => {
    // Until the user picks, suggest the newest run against the one before it.
    if (touched.current) return;
    setRunA(finished[1]?.id ?? "");
    setRunB(finished[0]?.id ?? "");
  }, [runs]);
  const options = finished.map((r) => (
    <option key={r.id} value={r.id}>
      {shortId(r.id)} · {r.suite} · {when(r.created_at)}
    </option>
  ));
  return (
    <section class="card" aria-labelledby="compare-title">
      <h2 id="compare-title">Compare runs</h2>
      <form
        class="stack"
        onSubmit={(e) => {
          e.preventDefault();
          if (runA && runB) navigate(`#/evals/compare?a=${encodeURIComponent(runA)}&b=${encodeURIComponent(runB)}`);
        }}
      >
        <div class="field">
          <label for="compare-a">Run A</label>
          <select
            id="compare-a"
            value={runA}
            onChange={(e) => {
              touched.current = true;
              setRunA(e.currentTarget.value);
            }}
          >
            <option value="">Choose the baseline…</option>
            {options}
          </select>
        </div>
        <div class="field">
          <label for="compare-b">Run B</label>
          <select
            id="compare-b"
            value={runB}
            onChange={(e) => {
              touched.current = true;
              setRunB(e.currentTarget.value);
            }}
          >
            <option value="">Choose the new run…</option>
            {options}
          </select>
        </div>
        <p class="hint">B is compared with A: questions where B got worse come first.</p>
        <div class="actions">
          <button type="submit" class="button" disabled={!runA || !runB || runA === runB}>
            Compare
          </button>
        </div>
      </form>
    </section>
  );
}

function Report({ path, filename, title }: { path: string; filename: string; title: string }) {
  const [url, setUrl] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const save = async () => {
    setBusy(true);
    setError(null);
    try {
      download(await fetchBlob(path), filename);
      setNote(`Report downloaded as ${filename}.`);
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };

  const view = async () => {
    if (url) return setUrl(null);
    setBusy(true);
    setError(null);
    try {
      // A frame sends no bearer header: a one-minute ticket opens the report's URL, and the report
      // is shown under its own sandboxing CSP (inline styles allowed there, scripts never).
      const ticket = await api<{ url: string }>("/v1/auth/tickets", { method: "POST", json: { path } });
      setUrl(ticket.url);
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="report">
      <div class="actions">
        <button type="button" class="button" disabled={busy} onClick={() => void view()}>
          {url ? "Hide report" : title}
        </button>
        <button type="button" class="button ghost" disabled={busy} onClick={() => void save()}>
          Download report
        </button>
        <span role="status" class="muted small">
          {note}
        </span>
      </div>
      <ErrorMessage error={error} />
      {url && <iframe class="report-frame" title="Eval report" sandbox="" src={url} />}
    </div>
  );
}

function GatesTable({ gates }: { gates: Gate[] }) {
  if (!gates.length) return <p class="muted small">No gates configured.</p>;
  return (
    <div class="table-wrap">
      <table>
        <caption>Gates</caption>
        <thead>
          <tr>
            <th scope="col">Gate</th>
            <th scope="col">Kind</th>
            <th scope="col" class="num">Value</th>
            <th scope="col" class="num">Bound</th>
            <th scope="col">Result</th>
          </tr>
        </thead>
        <tbody>
          {gates.map((g) => (
            <tr key={g.name}>
              <th scope="row">
                {g.name}
                <div class="muted small">{g.message}</div>
              </th>
              <td>{g.kind}</td>
              <td class="num">{num(g.value)}</td>
              <td class="num">{num(g.bound)}</td>
              <td>{g.passed ? <span class="badge state-succeeded">Pass</span> : <span class="badge state-failed">Fail</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function EvalRunScreen({ id }: { id: string }) {
  const [run, setRun] = useState<EvalRun | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async () => {
    try {
      setRun(await api<EvalRun>(`/v1/evals/runs/${encodeURIComponent(id)}`));
      setError(null);
    } catch (e) {
      setError(messageOf(e));
    }
  }, [id]);
  useEffect(() => {
    void load();
  }, [load]);
  const running = run && RUNNING.has(run.state);
  useEffect(() => {
    if (!running) return;
    const t = window.setInterval(() => void load(), 2500);
    return () => window.clearInterval(t);
  }, [running, load]);

  const metrics = run?.summary?.metrics ?? {};
  return (
    <section class="page">
      <p class="crumbs">
        <a href="#/evals">Evaluations</a> <span aria-hidden="true">/</span>
      </p>
      <div class="page-head">
        <h1>Run {shortId(id)}</h1>
        {run && (
          <p class="muted">
            Suite <strong>{run.suite}</strong> · started {when(run.created_at)}
            {run.finished_at && <> · finished {when(run.finished_at)}</>}
          </p>
        )}
      </div>
      <ErrorMessage error={error} onRetry={() => void load()} />
      {!run && !error && <Loading />}
      {run && (
        <>
          <div class="run-verdict">
            <StateBadge state={run.state} />
            <GateVerdict run={run} />
            {running && (
              <span role="status" class="muted small">
                <span class="spinner" aria-hidden="true" /> Running… this page updates by itself.
              </span>
            )}
          </div>
          {run.error && <ErrorMessage error={run.error} />}
          {Object.keys(metrics).length > 0 && (
            <dl class="metric-cards">
              {headline(metrics, 4).map(([n, v]) => (
                <div class="card metric-card" key={n}>
                  <dt>{n}</dt>
                  <dd>{v === null ? "—" : num(v)}</dd>
                </div>
              ))}
            </dl>
          )}
          {Object.keys(metrics).length > 0 && (
            <div class="table-wrap">
              <table>
                <caption>Metrics</caption>
                <thead>
                  <tr>
                    <th scope="col">Metric</th>
                    <th scope="col" class="num">Value</th>
                  </tr>
                </thead>
                <tbody>
                  {Object.entries(metrics).map(([n, v]) => (
                    <tr key={n}>
                      <th scope="row">{n}</th>
                      <td class="num">{v === null ? <span class="muted">not measured</span> : num(v)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {run.gates && <GatesTable gates={run.gates} />}
          {!running && (
            <Report path={`/v1/evals/runs/${encodeURIComponent(id)}/report`} filename={`lore-eval-${shortId(id)}.html`} title="View report" />
          )}
        </>
      )}
    </section>
  );
}

type CompareData = {
  metrics?: Record<string, { a: number | null; b: number | null; delta: number | null; worse: boolean | null }>;
  summary?: Record<string, { a: number | null; b: number | null; delta: number | null; worse: boolean | null }>;
  questions: {
    case_id: string;
    question: string;
    answer_a?: string | null;
    answer_b?: string | null;
    deltas?: Record<string, { a: number; b: number; delta: number } | number | null>;
    regressed: string[];
    improved: string[];
  }[];
  regressed?: number;
  improved?: number;
  gates?: Gate[];
  passed?: boolean;
};

export function CompareScreen({ a, b }: { a: string; b: string }) {
  const { runs } = useRuns();
  const [data, setData] = useState<CompareData | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  useEffect(() => {
    if (!a || !b) return;
    setLoading(true);
    setData(null);
    api<CompareData>("/v1/evals/compare", { query: { a, b } })
      .then((d) => {
        setData(d);
        setError(null);
      })
      .catch((e) => setError(messageOf(e)))
      .finally(() => setLoading(false));
  }, [a, b]);
  const summary = data?.metrics ?? data?.summary ?? {};
  return (
    <section class="page">
      <p class="crumbs">
        <a href="#/evals">Evaluations</a> <span aria-hidden="true">/</span>
      </p>
      <div class="page-head">
        <h1>Compare runs</h1>
        {a && b && (
          <p class="muted">
            Run B <a href={href("evals", b)}>{shortId(b)}</a> against run A <a href={href("evals", a)}>{shortId(a)}</a>.
          </p>
        )}
      </div>
      <CompareForm runs={runs ?? []} a={a} b={b} key={`${a}-${b}-${runs?.length ?? 0}`} />
      <ErrorMessage error={error} />
      {loading && <Loading label="Comparing…" />}
      {data && (
        <>
          <p role="status" class="notice">
            {data.regressed ?? data.questions.filter((q) => q.regressed.length).length} question(s) regressed,{" "}
            {data.improved ?? data.questions.filter((q) => q.improved.length && !q.regressed.length).length} improved.
          </p>
          <div class="table-wrap">
            <table>
              <caption>Metric changes</caption>
              <thead>
                <tr>
                  <th scope="col">Metric</th>
                  <th scope="col" class="num">A</th>
                  <th scope="col" class="num">B</th>
                  <th scope="col" class="num">Change</th>
                </tr>
              </thead>
              <tbody>
                {Object.entries(summary).map(([n, m]) => (
                  <tr key={n} class={m.worse ? "worse" : ""}>
                    <th scope="row">{n}</th>
                    <td class="num">{num(m.a)}</td>
                    <td class="num">{num(m.b)}</td>
                    <td class={`num${m.worse ? " bad" : m.delta ? " good" : ""}`}>
                      {m.delta === null ? "—" : `${m.delta > 0 ? "+" : ""}${num(m.delta)}`}
                      {m.worse && <span class="sr-only"> (worse)</span>}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {data.gates && data.gates.length > 0 && <GatesTable gates={data.gates} />}
          {data.questions.length === 0 ? (
            <Empty>
              <p>The runs share no questions.</p>
            </Empty>
          ) : (
            <div class="table-wrap">
              <table>
                <caption>Questions</caption>
                <thead>
                  <tr>
                    <th scope="col">Question</th>
                    <th scope="col">Regressed</th>
                    <th scope="col">Improved</th>
                    <th scope="col">Answers (A, then B)</th>
                  </tr>
                </thead>
                <tbody>
                  {data.questions.map((q) => (
                    <tr key={q.case_id} data-testid="compare-question" data-regressed={q.regressed.length > 0 ? "true" : "false"} class={q.regressed.length ? "worse" : ""}>
                      <th scope="row">{q.question}</th>
                      <td class="bad small">{q.regressed.join(", ") || "—"}</td>
                      <td class="good small">{q.improved.join(", ") || "—"}</td>
                      <td class="small">
                        <div>
                          <strong>A:</strong> {q.answer_a ?? "—"}
                        </div>
                        <div>
                          <strong>B:</strong> {q.answer_b ?? "—"}
                        </div>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <Report path={withQuery("/v1/evals/compare/report", { a, b })} filename={`lore-compare-${shortId(a)}-${shortId(b)}.html`} title="View comparison report" />
        </>
      )}
    </section>
  );
}
