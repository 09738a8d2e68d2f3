// Shapes of the API's JSON, as the web app reads them (see docs/api.md and api/**/schemas.py).

export type Role = "reader" | "evaluator" | "admin";

export type Principal = { user_id: string; username: string; role: Role; via: string };

export type Corpus = { id: string; name: string; version: number; documents: number; created_at: string };

export type Location = { spans: [number, number][]; boxes: [number, number, number, number][]; anchor: string | null };

export type Citation = {
  n: number;
  document_id: string;
  title: string;
  source: string;
  page: number | null;
  text: string;
  location?: Location;
  score?: number | null;
};

export type Removed = { sentence: string; reason: string };

export type Feedback = { rating: "up" | "down"; comment: string | null; created_at: string };

export type Message = {
  id: string;
  role: "user" | "assistant";
  content: string;
  citations: Citation[];
  model: string | null;
  timings: Record<string, number>;
  status: string;
  created_at: string;
  refused?: boolean;
  answer_kind?: string | null;
  unsupported_sentences?: Removed[];
  feedback?: Feedback | null;
};

export type Conversation = { id: string; title: string; corpus: string | null; created_at: string; updated_at: string };

export type ConversationWithMessages = Conversation & { messages: Message[] };

export type Job = {
  id: string;
  corpus: string;
  kind: string;
  state: string;
  documents_total: number;
  documents_new: number;
  documents_changed: number;
  documents_unchanged: number;
  documents_deleted: number;
  documents_failed: number;
  chunks_embedded: number;
  documents_done: number;
  documents_per_s: number | null;
  chunks_per_s: number | null;
  eta_s: number | null;
  started_at: string;
  finished_at: string | null;
  error: string | null;
  retry_of: string | null;
  failures?: { source: string; error: string | null }[];
};

export type JobAccepted = { id: string; corpus: string; kind: string; state: string; links: { job: string; cancel: string } };

export type JobDocument = {
  seq: number | null;
  source: string;
  status: string;
  stage: string | null;
  chunks: number;
  error: string | null;
  timings_ms: Record<string, number>;
  attempts: number;
};

export type DocumentInfo = {
  id: string;
  corpus: string;
  title: string;
  source: string;
  doc_type?: string | null;
  pages?: number | null;
  chunks?: number | null;
  created_at?: string;
  updated_at?: string;
  [key: string]: unknown;
};

export type DocumentText = { id: string; corpus: string; title: string; source: string; pages: number | null; page: number | null; text: string };

export type User = { id: string; username: string; role: Role; disabled: boolean; has_password: boolean; created_at: string };

export type ApiKey = {
  id: string;
  name: string;
  username: string;
  role: Role;
  display_prefix: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
  key?: string;
};

export type Scores = { dense: number | null; sparse: number | null; hybrid: number | null; dense_rank: number | null; sparse_rank: number | null };

export type SearchResult = Citation & { score: number; scores?: Scores };

export type EvalRun = {
  id: string;
  suite: string;
  state: string;
  passed: boolean | null;
  created_at: string;
  finished_at: string | null;
  error: string | null;
  summary?: { metrics?: Record<string, number | null>; [key: string]: unknown } | null;
  gates?: Gate[] | null;
};

export type Gate = { name: string; metric: string; kind: string; value: number | null; bound: number; passed: boolean; message: string };

export type Suite = { name: string; description?: string; cases?: number };

export type Comparison = {
  summary: Record<string, { a: number | null; b: number | null; delta: number | null; worse: boolean }>;
  questions: {
    case_id: string;
    question: string;
    answer_a?: string | null;
    answer_b?: string | null;
    deltas?: Record<string, number | null>;
    regressed: string[];
    improved: string[];
  }[];
};

export type FeedbackItem = {
  message_id: string;
  conversation_id: string;
  question: string;
  answer: string;
  rating: "up" | "down";
  comment: string | null;
  citations: Citation[];
  username: string;
  created_at: string;
};
