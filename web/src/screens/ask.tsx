// Ask: conversations, the streamed answer with its [n] markers, and the Sources panel beside it.
import type { JSX, TargetedKeyboardEvent } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api, apiFetch, ApiError, messageOf } from "../api";
import { readSse } from "../sse";
import { useSession } from "../session";
import { href, navigate } from "../router";
import type { Citation, Conversation, ConversationWithMessages, Feedback, Message, Removed } from "../types";
import { ConfirmDialog, CorpusSelect, Empty, ErrorMessage, Loading } from "../components/ui";
import { DocumentViewer, type ViewTarget } from "../components/viewer";
import { isUrl, num, sourceName } from "../format";
import { Markdown } from "../components/markdown";
import { copyText } from "../clipboard";
import { Copy, Pencil, ThumbDown, ThumbUp, Trash } from "../components/icons";

type Segment = { kind: "text"; text: string } | { kind: "removed"; sentence: string; reason: string };

type Answer = {
  id: string | null;
  segments: Segment[];
  citations: Citation[];
  status: "streaming" | "complete" | "partial" | "stopped" | "error";
  refused: boolean;
  refusal: string | null;
  error: string | null;
  cached: boolean;
  feedback: Feedback | null;
};

type Turn = { key: string; question: string; corpus: string | null; answer: Answer | null };

let turnCounter = 0;
const newKey = () => `t${++turnCounter}`;

function answerText(answer: Answer): string {
  return answer.segments
    .filter((s): s is { kind: "text"; text: string } => s.kind === "text")
    .map((s) => s.text)
    .join("")
    .trim();
}

function fromMessages(messages: Message[]): Turn[] {
  const turns: Turn[] = [];
  for (const m of messages) {
    if (m.role === "user") {
      turns.push({ key: newKey(), question: m.content, corpus: null, answer: null });
      continue;
    }
    let turn = turns[turns.length - 1];
    if (!turn || turn.answer) {
      turn = { key: newKey(), question: "", corpus: null, answer: null };
      turns.push(turn);
    }
    const removed: Segment[] = (m.unsupported_sentences ?? []).map((u) => ({ kind: "removed", ...u }));
    turn.answer = {
      id: m.id,
      segments: m.refused ? removed : [{ kind: "text", text: m.content }, ...removed],
      citations: m.citations ?? [],
      status: m.status === "partial" ? "partial" : "complete",
      refused: !!m.refused,
      refusal: m.refused ? m.content : null,
      error: null,
      cached: false,
      feedback: m.feedback ?? null,
    };
  }
  return turns;
}

function sourceLine(c: Citation): string {
  const where = c.page !== null && c.page !== undefined ? `, page ${c.page}` : "";
  return `[${c.n}] ${c.title || sourceName(c.source)} — ${sourceName(c.source)}${where}`;
}

export function AskScreen({ conversationId }: { conversationId: string | null }) {
  const { corpora } = useSession();
  const [conversations, setConversations] = useState<Conversation[] | null>(null);
  const [listError, setListError] = useState<string | null>(null);
  const [turns, setTurns] = useState<Turn[]>([]);
  const [threadState, setThreadState] = useState<{ loading: boolean; error: string | null }>({ loading: false, error: null });
  const [corpus, setCorpus] = useState("");
  const [question, setQuestion] = useState("");
  const [streaming, setStreaming] = useState(false);
  const [selected, setSelected] = useState<string | null>(null);
  const [focusCite, setFocusCite] = useState<{ key: string; n: number; at: number } | null>(null);
  const [viewing, setViewing] = useState<ViewTarget | null>(null);
  const abort = useRef<AbortController | null>(null);
  const ownCreated = useRef<string | null>(null);
  const composer = useRef<HTMLTextAreaElement>(null);
  const threadEnd = useRef<HTMLDivElement>(null);

  const loadList = useCallback(async () => {
    try {
      setConversations(await api<Conversation[]>("/v1/conversations"));
      setListError(null);
    } catch (e) {
      setListError(messageOf(e));
    }
  }, []);

  useEffect(() => {
    void loadList();
  }, [loadList]);

  const loadThread = useCallback(async (id: string) => {
    setThreadState({ loading: true, error: null });
    try {
      const conv = await api<ConversationWithMessages>(`/v1/conversations/${encodeURIComponent(id)}`);
      const loaded = fromMessages(conv.messages);
      setTurns(loaded);
      setCorpus(conv.corpus ?? "");
      setSelected(loaded.length ? loaded[loaded.length - 1].key : null);
      setThreadState({ loading: false, error: null });
    } catch (e) {
      setTurns([]);
      setThreadState({
        loading: false,
        error: e instanceof ApiError && e.status === 404 ? "This conversation does not exist or is not yours." : messageOf(e),
      });
    }
  }, []);

  useEffect(() => {
    if (conversationId && conversationId === ownCreated.current) return;
    abort.current?.abort();
    ownCreated.current = null;
    if (conversationId) void loadThread(conversationId);
    else {
      setTurns([]);
      setSelected(null);
      setThreadState({ loading: false, error: null });
    }
  }, [conversationId, loadThread]);

  useEffect(() => {
    threadEnd.current?.scrollIntoView({ block: "end" });
  }, [turns.length]);

  const updateAnswer = (key: string, change: (a: Answer) => Answer) =>
    setTurns((all) => all.map((t) => (t.key === key && t.answer ? { ...t, answer: change(t.answer) } : t)));

  const stop = useCallback(() => abort.current?.abort(), []);

  useEffect(() => {
    if (!streaming) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape" && !document.querySelector("dialog[open]")) {
        e.preventDefault();
        stop();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [streaming, stop]);

  const ask = async (text: string, retryKey?: string) => {
    const q = text.trim();
    if (!q || streaming) return;
    const key = retryKey ?? newKey();
    const fresh: Answer = {
      id: null,
      segments: [],
      citations: [],
      status: "streaming",
      refused: false,
      refusal: null,
      error: null,
      cached: false,
      feedback: null,
    };
    if (retryKey) setTurns((all) => all.map((t) => (t.key === key ? { ...t, answer: fresh } : t)));
    else setTurns((all) => [...all, { key, question: q, corpus: corpus || null, answer: fresh }]);
    setSelected(key);
    setQuestion("");
    setStreaming(true);
    const controller = new AbortController();
    abort.current = controller;
    let convId = conversationId;
    try {
      if (!convId) {
        const created = await api<Conversation>("/v1/conversations", {
          method: "POST",
          json: { title: q.slice(0, 120), corpus: corpus || null },
        });
        convId = created.id;
        ownCreated.current = created.id;
        setConversations((list) => [created, ...(list ?? [])]);
        navigate(href("ask", created.id), true);
      }
      const response = await apiFetch("/v1/query/stream", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify({ question: q, corpus: corpus || null, conversation_id: convId }),
        signal: controller.signal,
      });
      let finished = false;
      await readSse(
        response,
        ({ event, data }) => {
          let payload: unknown;
          try {
            payload = JSON.parse(data);
          } catch {
            payload = data;
          }
          if (event === "token") {
            const piece = typeof payload === "string" ? payload : String(payload);
            updateAnswer(key, (a) => {
              const segments = [...a.segments];
              const last = segments[segments.length - 1];
              if (last && last.kind === "text") segments[segments.length - 1] = { kind: "text", text: last.text + piece };
              else segments.push({ kind: "text", text: piece });
              return { ...a, segments };
            });
          } else if (event === "sentence_removed") {
            const r = payload as Removed;
            updateAnswer(key, (a) => ({ ...a, segments: [...a.segments, { kind: "removed", sentence: r.sentence, reason: r.reason }] }));
          } else if (event === "refusal") {
            const text = (payload as { answer?: string })?.answer ?? String(payload);
            updateAnswer(key, (a) => ({ ...a, refused: true, refusal: text, segments: a.segments.filter((s) => s.kind === "removed") }));
          } else if (event === "citations") {
            updateAnswer(key, (a) => ({ ...a, citations: Array.isArray(payload) ? (payload as Citation[]) : [] }));
          } else if (event === "done") {
            finished = true;
            const d = payload as {
              answer?: string;
              refused?: boolean;
              cached?: boolean;
              message_id?: string | null;
              unsupported_sentences?: Removed[];
            };
            updateAnswer(key, (a) => {
              let segments = a.segments;
              const hasRemoved = segments.some((s) => s.kind === "removed");
              if (!hasRemoved && d.unsupported_sentences?.length) {
                segments = [...segments, ...d.unsupported_sentences.map((u) => ({ kind: "removed" as const, ...u }))];
              }
              const refused = a.refused || !!d.refused;
              return {
                ...a,
                id: d.message_id ?? a.id,
                status: "complete",
                cached: !!d.cached,
                refused,
                refusal: refused ? (a.refusal ?? d.answer ?? answerText(a)) : null,
                segments: refused ? segments.filter((s) => s.kind === "removed") : segments,
              };
            });
          } else if (event === "error") {
            finished = true;
            const err = payload as { message?: string };
            updateAnswer(key, (a) => ({ ...a, status: "error", error: err?.message ?? "The answer failed." }));
          }
        },
        controller.signal,
      );
      if (!finished) {
        updateAnswer(key, (a) => ({
          ...a,
          status: controller.signal.aborted ? "stopped" : "error",
          error: controller.signal.aborted ? null : "The answer stopped before it was complete.",
        }));
      }
    } catch (e) {
      if (controller.signal.aborted) updateAnswer(key, (a) => ({ ...a, status: "stopped" }));
      else updateAnswer(key, (a) => ({ ...a, status: "error", error: messageOf(e) }));
    } finally {
      setStreaming(false);
      abort.current = null;
      void loadList();
      composer.current?.focus();
    }
  };

  const onComposerKey = (e: TargetedKeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void ask(question);
    }
  };

  const showSource = (key: string, n: number) => {
    setSelected(key);
    setFocusCite({ key, n, at: Date.now() });
  };

  useEffect(() => {
    if (!focusCite) return;
    const el = document.getElementById(`cite-${focusCite.key}-${focusCite.n}`);
    if (el) {
      el.scrollIntoView({ block: "nearest", behavior: "smooth" });
      el.focus({ preventScroll: true });
    }
  }, [focusCite]);

  const selectedTurn = turns.find((t) => t.key === selected) ?? [...turns].reverse().find((t) => t.answer?.citations.length);
  const activeCitations = selectedTurn?.answer?.citations ?? [];
  const current = conversations?.find((c) => c.id === conversationId);

  return (
    <div class="ask">
      <ConversationList
        conversations={conversations}
        error={listError}
        currentId={conversationId}
        onRetry={loadList}
        onChanged={loadList}
        setConversations={setConversations}
        onNew={() => {
          abort.current?.abort();
          if (conversationId) navigate("#/ask");
          else {
            setTurns([]);
            setSelected(null);
          }
          composer.current?.focus();
        }}
      />
      <section class="chat" aria-labelledby="ask-title">
        <div class="chat-head">
          <h1 id="ask-title">Ask</h1>
          <span class="chat-title muted">{current ? current.title || "Untitled conversation" : conversationId ? "" : "New conversation"}</span>
          <div class="chat-corpus">
            <CorpusSelect corpora={corpora} value={corpus} onChange={setCorpus} allLabel="All my corpora" id="ask-corpus" />
          </div>
        </div>
        <div class="thread" role="log" aria-label="Messages" aria-live="polite" aria-relevant="additions text">
          {threadState.loading && <Loading label="Loading the conversation…" />}
          <ErrorMessage error={threadState.error} onRetry={conversationId ? () => void loadThread(conversationId) : undefined} />
          {!threadState.loading && !threadState.error && turns.length === 0 && (
            <div class="welcome">
              <h2>What would you like to know?</h2>
              <p class="muted">
                Lore answers from {corpus ? <strong>{corpus}</strong> : "the corpora you may read"} and cites every
                claim. When your documents don't hold the answer, it says so.
              </p>
              {corpora.length === 0 && <p class="notice">You have no corpora yet: ask an admin for access.</p>}
            </div>
          )}
          {turns.map((t) => (
            <TurnView
              key={t.key}
              turn={t}
              conversationId={conversationId}
              selected={selectedTurn?.key === t.key}
              onShowSource={(n) => showSource(t.key, n)}
              onSelect={() => setSelected(t.key)}
              onRetry={() => void ask(t.question, t.key)}
              onFeedback={(fb, id) => updateAnswer(t.key, (a) => ({ ...a, feedback: fb, id: id ?? a.id }))}
              index={turns.indexOf(t)}
              busy={streaming}
            />
          ))}
          <div ref={threadEnd} />
        </div>
        <form
          class="composer"
          onSubmit={(e) => {
            e.preventDefault();
            void ask(question);
          }}
        >
          <label for="question" class="sr-only">
            Question
          </label>
          <textarea
            id="question"
            ref={composer}
            rows={2}
            placeholder="Ask a question about your documents…"
            value={question}
            onInput={(e) => setQuestion(e.currentTarget.value)}
            onKeyDown={onComposerKey}
            aria-describedby="composer-hint"
          />
          <div class="composer-actions">
            <span id="composer-hint" class="muted small">
              Enter to send · Shift+Enter for a new line{streaming ? " · Esc to stop" : ""}
            </span>
            {streaming ? (
              <button type="button" class="button" onClick={stop}>
                Stop generating
              </button>
            ) : (
              <button type="submit" class="button primary" disabled={!question.trim()}>
                Send
              </button>
            )}
          </div>
        </form>
      </section>
      <aside class="sources" aria-label="Sources">
        <h2>Sources</h2>
        {activeCitations.length === 0 ? (
          <Empty>
            <p class="muted small">The passages an answer cites appear here, with their documents.</p>
          </Empty>
        ) : (
          <ol class="citation-list">
            {activeCitations.map((c) => (
              <li
                key={c.n}
                id={`cite-${selectedTurn!.key}-${c.n}`}
                class={`citation${focusCite && focusCite.key === selectedTurn!.key && focusCite.n === c.n ? " active" : ""}`}
                data-testid="citation"
                data-n={c.n}
                tabIndex={-1}
              >
                <div class="citation-head">
                  <span class="citation-n" aria-hidden="true">
                    {c.n}
                  </span>
                  <div>
                    <h3 class="citation-title">
                      <span class="sr-only">Source {c.n}: </span>
                      {c.title || sourceName(c.source)}
                    </h3>
                    <p class="citation-where muted small">
                      {c.page !== null && c.page !== undefined ? (
                        <>Page {c.page} · </>
                      ) : null}
                      {isUrl(c.source) ? (
                        <a href={c.source} target="_blank" rel="noopener noreferrer">
                          {c.source}
                        </a>
                      ) : (
                        <span class="break" title={c.source}>{sourceName(c.source)}</span>
                      )}
                    </p>
                  </div>
                </div>
                <blockquote class="passage">{c.text}</blockquote>
                <div class="citation-foot">
                  {typeof c.score === "number" && <span class="muted small">Score {num(c.score)}</span>}
                  <button
                    type="button"
                    class="button small"
                    onClick={() =>
                      setViewing({
                        document_id: c.document_id,
                        title: c.title,
                        source: c.source,
                        page: c.page,
                        text: c.text,
                        location: c.location,
                      })
                    }
                  >
                    Open in document
                  </button>
                </div>
              </li>
            ))}
          </ol>
        )}
      </aside>
      {viewing && <DocumentViewer target={viewing} onClose={() => setViewing(null)} />}
    </div>
  );
}

const MARKER = /\[(\d+(?:\s*,\s*\d+)*)\]/g;

function markers(text: string, key: string, onShowSource: (n: number) => void): (string | JSX.Element)[] {
  const out: (string | JSX.Element)[] = [];
  let at = 0;
  let i = 0;
  for (const m of text.matchAll(MARKER)) {
    if (m.index! > at) out.push(text.slice(at, m.index));
    for (const n of m[1].split(",").map((s) => Number(s.trim()))) {
      out.push(
        <button
          type="button"
          class="cite-ref"
          data-testid="citation-ref"
          aria-label={`Source ${n}`}
          key={`${key}-${i++}`}
          onClick={() => onShowSource(n)}
        >
          [{n}]
        </button>,
      );
    }
    at = m.index! + m[0].length;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

function AnswerText({ text, onShowSource }: { text: string; onShowSource: (n: number) => void }) {
  return <Markdown text={text} inline={(t, key) => markers(t, key, onShowSource)} />;
}

function TurnView({
  turn,
  conversationId,
  selected,
  onShowSource,
  onSelect,
  onRetry,
  onFeedback,
  index,
  busy,
}: {
  turn: Turn;
  conversationId: string | null;
  selected: boolean;
  onShowSource: (n: number) => void;
  onSelect: () => void;
  onRetry: () => void;
  onFeedback: (fb: Feedback, id: string | null) => void;
  index: number;
  busy: boolean;
}) {
  const a = turn.answer;
  return (
    <>
      {turn.question && (
        <div class="message user" data-testid="message" data-role="user">
          <span class="sr-only">You asked: </span>
          <p>{turn.question}</p>
        </div>
      )}
      {a && (
        <article
          class={`message assistant${selected ? " selected" : ""}${a.refused ? " refused" : ""}`}
          data-testid="message"
          data-role="assistant"
          data-status={a.status}
          aria-label={`Answer ${index + 1}`}
          onClick={(e) => {
            if (!(e.target as HTMLElement).closest("button, a, textarea, input")) onSelect();
          }}
        >
          {a.refused ? (
            <div class="refusal" data-testid="refusal">
              <p class="refusal-title">
                <span class="refusal-icon" aria-hidden="true">
                  ∅
                </span>
                Your documents don't answer this
              </p>
              <p>{a.refusal}</p>
            </div>
          ) : (
            <>
              {a.status === "streaming" && a.segments.every((s) => s.kind !== "text") && (
                <p class="thinking">
                  <span class="spinner" aria-hidden="true" />
                  Finding sources and writing…
                </p>
              )}
              <div class={`answer${a.status === "streaming" ? " streaming" : ""}`} data-testid="answer-text">
                <AnswerText text={a.segments.map((s) => (s.kind === "text" ? s.text : "")).join("")} onShowSource={onShowSource} />
              </div>
            </>
          )}
          {a.segments.some((s) => s.kind === "removed") && (
            <ul class="removed-list" aria-label="Sentences removed by verification">
              {a.segments.map((s, i) =>
                s.kind === "removed" ? (
                  <li key={i} class="removed" data-testid="removed-sentence">
                    <del>{s.sentence}</del>
                    <span class="removed-reason">Removed: {s.reason}</span>
                  </li>
                ) : null,
              )}
            </ul>
          )}
          {a.status === "error" && (
            <div class="error" role="alert">
              <span>{a.error}</span>
              <button type="button" class="button small" onClick={onRetry} disabled={busy}>
                Retry
              </button>
            </div>
          )}
          {(a.status === "stopped" || a.status === "partial") && (
            <p class="muted small status-note">{a.status === "stopped" ? "Stopped." : "This answer was interrupted."}</p>
          )}
          {a.status !== "streaming" && a.status !== "error" && (
            <AnswerActions answer={a} conversationId={conversationId} index={index} onFeedback={onFeedback} />
          )}
        </article>
      )}
    </>
  );
}

function AnswerActions({
  answer,
  conversationId,
  index,
  onFeedback,
}: {
  answer: Answer;
  conversationId: string | null;
  index: number;
  onFeedback: (fb: Feedback, id: string | null) => void;
}) {
  const [copied, setCopied] = useState<string | null>(null);
  const [comment, setComment] = useState(answer.feedback?.comment ?? "");
  const [state, setState] = useState<{ saving: boolean; saved: boolean; error: string | null }>({
    saving: false,
    saved: false,
    error: null,
  });
  const rating = answer.feedback?.rating ?? null;

  const copy = async () => {
    const text = answer.refused ? (answer.refusal ?? "") : answerText(answer);
    const sources = answer.citations.length ? "\n\nSources:\n" + answer.citations.map(sourceLine).join("\n") : "";
    try {
      await copyText(text + sources);
      setCopied("Copied");
    } catch (e) {
      setCopied(messageOf(e));
    }
    window.setTimeout(() => setCopied(null), 2500);
  };

  const messageId = async (): Promise<string> => {
    if (answer.id) return answer.id;
    if (!conversationId) throw new Error("This answer is not saved in a conversation.");
    // The done event carried no message id: find the saved answer by its place in the conversation.
    const conv = await api<ConversationWithMessages>(`/v1/conversations/${encodeURIComponent(conversationId)}`);
    const answers = conv.messages.filter((m) => m.role === "assistant");
    const found = answers[index] ?? answers[answers.length - 1];
    if (!found) throw new Error("The answer is still being saved; try again in a moment.");
    return found.id;
  };

  const send = async (r: "up" | "down", withComment: string | null) => {
    if (!conversationId) return;
    setState({ saving: true, saved: false, error: null });
    try {
      const id = await messageId();
      const saved = await api<Message>(
        `/v1/conversations/${encodeURIComponent(conversationId)}/messages/${encodeURIComponent(id)}/feedback`,
        { method: "PUT", json: withComment ? { rating: r, comment: withComment } : { rating: r } },
      );
      onFeedback(saved.feedback ?? { rating: r, comment: withComment, created_at: new Date().toISOString() }, id);
      setState({ saving: false, saved: true, error: null });
    } catch (e) {
      setState({ saving: false, saved: false, error: messageOf(e) });
    }
  };

  return (
    <div class="answer-actions">
      <div class="action-row">
        <button type="button" class="button small ghost" onClick={() => void copy()}>
          <Copy />
          Copy answer
        </button>
        <span class="sr-status small muted" role="status">
          {copied}
        </span>
        {conversationId && (
          <span class="rating" role="group" aria-label="Rate this answer">
            <button
              type="button"
              class="button small ghost thumb"
              aria-pressed={rating === "up"}
              disabled={state.saving}
              onClick={() => void send("up", comment.trim() || null)}
            >
              <ThumbUp />
              Helpful
            </button>
            <button
              type="button"
              class="button small ghost thumb"
              aria-pressed={rating === "down"}
              disabled={state.saving}
              onClick={() => void send("down", comment.trim() || null)}
            >
              <ThumbDown />
              Not helpful
            </button>
          </span>
        )}
        <span role="status" class="small feedback-status">
          {state.saved ? "Feedback saved" : state.saving ? "Saving…" : ""}
        </span>
      </div>
      {rating && (
        <form
          class="feedback-comment"
          onSubmit={(e) => {
            e.preventDefault();
            void send(rating, comment.trim() || null);
          }}
        >
          <label for={`comment-${answer.id ?? index}`} class="sr-only">
            Feedback comment
          </label>
          <textarea
            id={`comment-${answer.id ?? index}`}
            rows={2}
            placeholder={rating === "down" ? "What was wrong or missing? (optional)" : "What was useful? (optional)"}
            value={comment}
            onInput={(e) => setComment(e.currentTarget.value)}
          />
          <button type="submit" class="button small" disabled={state.saving}>
            Send comment
          </button>
        </form>
      )}
      <ErrorMessage error={state.error} />
    </div>
  );
}

function ConversationList({
  conversations,
  error,
  currentId,
  onRetry,
  onChanged,
  setConversations,
  onNew,
}: {
  onNew: () => void;
  conversations: Conversation[] | null;
  error: string | null;
  currentId: string | null;
  onRetry: () => void;
  onChanged: () => Promise<void>;
  setConversations: (update: (list: Conversation[] | null) => Conversation[] | null) => void;
}) {
  const [renaming, setRenaming] = useState<string | null>(null);
  const [title, setTitle] = useState("");
  const [deleting, setDeleting] = useState<Conversation | null>(null);
  const [busy, setBusy] = useState(false);
  const [opError, setOpError] = useState<string | null>(null);

  const rename = async (c: Conversation) => {
    const t = title.trim();
    if (!t) return;
    setBusy(true);
    try {
      const updated = await api<Conversation>(`/v1/conversations/${encodeURIComponent(c.id)}`, {
        method: "PATCH",
        json: { title: t },
      });
      setConversations((list) => list?.map((x) => (x.id === c.id ? { ...x, ...updated } : x)) ?? null);
      setRenaming(null);
      setOpError(null);
    } catch (e) {
      setOpError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };

  const remove = async () => {
    if (!deleting) return;
    setBusy(true);
    try {
      await api(`/v1/conversations/${encodeURIComponent(deleting.id)}`, { method: "DELETE" });
      setConversations((list) => list?.filter((x) => x.id !== deleting.id) ?? null);
      if (deleting.id === currentId) navigate("#/ask");
      setDeleting(null);
      setOpError(null);
      void onChanged();
    } catch (e) {
      setOpError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="conversations" aria-label="Conversations">
      <div class="conversations-head">
        <h2 class="sr-only">Conversations</h2>
        <button type="button" class="button primary block" onClick={onNew}>
          New conversation
        </button>
      </div>
      <ErrorMessage error={error} onRetry={onRetry} />
      {!deleting && <ErrorMessage error={opError} />}
      {conversations === null && !error && <Loading />}
      {conversations && conversations.length === 0 && <p class="muted small pad">No conversations yet.</p>}
      <ul class="conversation-list">
        {conversations?.map((c) => {
          const name = c.title || "Untitled conversation";
          return (
            <li key={c.id} class={c.id === currentId ? "current" : ""}>
              {renaming === c.id ? (
                <form
                  class="rename-form"
                  onSubmit={(e) => {
                    e.preventDefault();
                    void rename(c);
                  }}
                  onKeyDown={(e) => {
                    if (e.key === "Escape") {
                      e.stopPropagation();
                      setRenaming(null);
                    }
                  }}
                >
                  <label for={`rename-${c.id}`} class="sr-only">
                    Conversation title
                  </label>
                  <input
                    id={`rename-${c.id}`}
                    value={title}
                    maxLength={200}
                    onInput={(e) => setTitle(e.currentTarget.value)}
                    ref={(el) => el?.focus()}
                  />
                  <div class="rename-actions">
                    <button type="submit" class="button small primary" disabled={busy || !title.trim()}>
                      Save
                    </button>
                    <button type="button" class="button small" onClick={() => setRenaming(null)}>
                      Cancel
                    </button>
                  </div>
                </form>
              ) : (
                <>
                  <a href={href("ask", c.id)} aria-current={c.id === currentId ? "page" : undefined} class="conversation-link">
                    {name}
                  </a>
                  <span class="row-actions">
                    <button
                      type="button"
                      class="icon-button"
                      aria-label={`Rename conversation ${name}`}
                      title="Rename"
                      onClick={() => {
                        setTitle(c.title);
                        setRenaming(c.id);
                      }}
                    >
                      <Pencil />
                    </button>
                    <button
                      type="button"
                      class="icon-button"
                      aria-label={`Delete conversation ${name}`}
                      title="Delete"
                      onClick={() => setDeleting(c)}
                    >
                      <Trash />
                    </button>
                  </span>
                </>
              )}
            </li>
          );
        })}
      </ul>
      {deleting && (
        <ConfirmDialog
          title="Delete conversation?"
          confirmLabel="Delete"
          onConfirm={() => void remove()}
          onCancel={() => {
            setDeleting(null);
            setOpError(null);
          }}
          busy={busy}
          error={opError}
        >
          <p>
            “{deleting.title || "Untitled conversation"}” and all its messages will be deleted. This cannot be undone.
          </p>
        </ConfirmDialog>
      )}
    </section>
  );
}
