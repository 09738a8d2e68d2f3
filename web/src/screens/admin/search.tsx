import { useState } from "preact/hooks";
import { api, messageOf } from "../../api";
import { useSession } from "../../session";
import type { SearchResult } from "../../types";
import { CorpusSelect, Empty, ErrorMessage, Loading } from "../../components/ui";
import { DocumentViewer, type ViewTarget } from "../../components/viewer";
import { num, sourceName } from "../../format";

type Response = { results: SearchResult[]; timings?: Record<string, number>; verdicts?: Record<string, string> };

function Signal({ score, rank }: { score: number | null | undefined; rank?: number | null }) {
  if (score === null || score === undefined) {
    return (
      <span class="muted" title="Not among this signal's candidates">
        —<span class="sr-only">not found by this signal</span>
      </span>
    );
  }
  return (
    <span>
      {num(score, 4)}
      {rank !== undefined && rank !== null && <span class="muted small"> #{rank}</span>}
    </span>
  );
}

export function SearchScreen() {
  const { corpora } = useSession();
  const [query, setQuery] = useState("");
  const [corpus, setCorpus] = useState("");
  const [k, setK] = useState("10");
  const [result, setResult] = useState<Response | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [viewing, setViewing] = useState<ViewTarget | null>(null);

  const search = async (e?: Event) => {
    e?.preventDefault();
    if (!query.trim()) return;
    setBusy(true);
    setError(null);
    try {
      setResult(
        await api<Response>("/v1/search", {
          method: "POST",
          json: { query: query.trim(), corpus: corpus || null, k: Math.min(50, Math.max(1, Number(k) || 10)), explain: true },
        }),
      );
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="page">
      <div class="page-head">
        <h1>Search tester</h1>
        <p class="muted">
          See what retrieval finds for a question, and why: each passage's hybrid score with the dense (meaning) and sparse
          (keyword) scores and ranks that fed it.
        </p>
      </div>
      <form class="card search-form" onSubmit={search}>
        <div class="field grow">
          <label for="search-query">Query</label>
          <input id="search-query" value={query} onInput={(e) => setQuery(e.currentTarget.value)} placeholder="How do I rotate an API key?" required />
        </div>
        <CorpusSelect corpora={corpora} value={corpus} onChange={setCorpus} allLabel="All corpora" id="search-corpus" />
        <div class="field narrow-field">
          <label for="search-k">Results (k)</label>
          <input id="search-k" type="number" min={1} max={50} value={k} onInput={(e) => setK(e.currentTarget.value)} />
        </div>
        <button type="submit" class="button primary" disabled={busy || !query.trim()}>
          Search
        </button>
      </form>
      <ErrorMessage error={error} onRetry={() => void search()} />
      {busy && !result && <Loading label="Searching…" />}
      {result && result.results.length === 0 && (
        <Empty>
          <p>Nothing found. Check the corpus, or try the words the documents use.</p>
        </Empty>
      )}
      {result && result.results.length > 0 && (
        <>
          {result.verdicts && Object.keys(result.verdicts).length > 0 && (
            <p class="muted small">
              {Object.entries(result.verdicts)
                .map(([k2, v]) => `${k2}: ${v}`)
                .join(" · ")}
            </p>
          )}
          <div class="table-wrap">
            <table class="results-table">
              <caption>Results</caption>
              <thead>
                <tr>
                  <th scope="col" class="num">Rank</th>
                  <th scope="col">Passage</th>
                  <th scope="col" class="num">Hybrid</th>
                  <th scope="col" class="num">Dense</th>
                  <th scope="col" class="num">Sparse</th>
                </tr>
              </thead>
              <tbody>
                {result.results.map((r, i) => (
                  <tr key={`${r.document_id}-${i}`} data-testid="search-result">
                    <td class="num">{i + 1}</td>
                    <td>
                      <div class="result-title">
                        <strong>{r.title || sourceName(r.source)}</strong>
                        {r.page !== null && r.page !== undefined && <span class="muted small"> · page {r.page}</span>}
                      </div>
                      <div class="muted small path" title={r.source}>{sourceName(r.source)}</div>
                      <blockquote class="passage small">{r.text}</blockquote>
                      <button
                        type="button"
                        class="button small ghost"
                        onClick={() =>
                          setViewing({ document_id: r.document_id, title: r.title, source: r.source, page: r.page, text: r.text, location: r.location })
                        }
                      >
                        Open in document
                      </button>
                    </td>
                    <td class="num">
                      <Signal score={r.scores ? r.scores.hybrid : r.score} />
                    </td>
                    <td class="num">
                      <Signal score={r.scores?.dense} rank={r.scores?.dense_rank} />
                    </td>
                    <td class="num">
                      <Signal score={r.scores?.sparse} rank={r.scores?.sparse_rank} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      {viewing && <DocumentViewer target={viewing} onClose={() => setViewing(null)} />}
    </section>
  );
}
