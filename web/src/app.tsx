// The shell: restore the session on load, then header + nav + the screen the hash names.
import { useCallback, useEffect, useState } from "preact/hooks";
import { api, messageOf, onSignedOut, refreshSession, signOut } from "./api";
import { Login } from "./screens/login";
import { Loading } from "./components/ui";
import { atLeast, SessionContext, type Session } from "./session";
import { useRoute, type Route } from "./router";
import type { Corpus, Principal, Role } from "./types";
import { AskScreen } from "./screens/ask";
import { CorporaScreen } from "./screens/admin/corpora";
import { DocumentsScreen } from "./screens/admin/documents";
import { IngestScreen } from "./screens/admin/ingest";
import { JobsScreen, JobDetailScreen } from "./screens/admin/jobs";
import { UsersScreen } from "./screens/admin/users";
import { SearchScreen } from "./screens/admin/search";
import { EvalRunsScreen, EvalRunScreen, CompareScreen } from "./screens/evals";
import { FeedbackScreen } from "./screens/feedback";

type Phase = { kind: "restoring" } | { kind: "signed-out" } | { kind: "signed-in"; principal: Principal };

export function App() {
  const [phase, setPhase] = useState<Phase>({ kind: "restoring" });

  const enter = useCallback(async () => {
    try {
      const principal = await api<Principal>("/v1/auth/me");
      setPhase({ kind: "signed-in", principal });
    } catch {
      setPhase({ kind: "signed-out" });
    }
  }, []);

  useEffect(() => {
    const off = onSignedOut(() => setPhase({ kind: "signed-out" }));
    void (async () => {
      if (await refreshSession()) await enter();
      else setPhase({ kind: "signed-out" });
    })();
    return off;
  }, [enter]);

  if (phase.kind === "restoring") {
    return (
      <main id="main" class="center-screen">
        <Loading label="Opening Lore…" />
      </main>
    );
  }
  if (phase.kind === "signed-out") return <Login onSignedIn={enter} />;
  return <SignedIn principal={phase.principal} />;
}

type NavItem = { href: string; label: string; match: string; needs: Role };

const NAV: { group: string | null; items: NavItem[] }[] = [
  {
    group: null,
    items: [
      { href: "#/ask", label: "Ask", match: "ask", needs: "reader" },
      { href: "#/evals", label: "Evals", match: "evals", needs: "evaluator" },
      { href: "#/feedback", label: "Feedback", match: "feedback", needs: "evaluator" },
    ],
  },
  {
    group: "Admin",
    items: [
      { href: "#/admin/corpora", label: "Corpora", match: "admin/corpora", needs: "admin" },
      { href: "#/admin/documents", label: "Documents", match: "admin/documents", needs: "admin" },
      { href: "#/admin/ingest", label: "Ingest", match: "admin/ingest", needs: "admin" },
      { href: "#/admin/jobs", label: "Jobs", match: "admin/jobs", needs: "admin" },
      { href: "#/admin/users", label: "Users", match: "admin/users", needs: "admin" },
      { href: "#/admin/search", label: "Search tester", match: "admin/search", needs: "admin" },
    ],
  },
];

function SignedIn({ principal }: { principal: Principal }) {
  const route = useRoute();
  const [corpora, setCorpora] = useState<Corpus[]>([]);
  const [corporaError, setCorporaError] = useState<string | null>(null);
  const [menuOpen, setMenuOpen] = useState(false);

  const reloadCorpora = useCallback(async () => {
    try {
      setCorpora(await api<Corpus[]>("/v1/corpora"));
      setCorporaError(null);
    } catch (e) {
      setCorporaError(messageOf(e));
    }
  }, []);

  useEffect(() => {
    void reloadCorpora();
  }, [reloadCorpora]);

  useEffect(() => {
    if (!location.hash || location.hash === "#" || location.hash === "#/") {
      history.replaceState(null, "", "#/ask");
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    }
  }, []);

  useEffect(() => setMenuOpen(false), [route.hash]);

  const session: Session = { principal, corpora, corporaError, reloadCorpora };
  const current = route.parts.slice(0, route.parts[0] === "admin" ? 2 : 1).join("/");

  return (
    <SessionContext.Provider value={session}>
      <a class="skip-link" href="#main" onClick={(e) => {
        e.preventDefault();
        document.getElementById("main")?.focus();
      }}>
        Skip to content
      </a>
      <div class="layout">
        <header class="topbar">
          <a class="brand" href="#/ask">
            <span class="brand-mark" aria-hidden="true">L</span>
            Lore
          </a>
          <button
            type="button"
            class="menu-button"
            aria-expanded={menuOpen}
            aria-controls="main-nav"
            onClick={() => setMenuOpen(!menuOpen)}
          >
            Menu
          </button>
          <nav id="main-nav" aria-label="Main" class={menuOpen ? "open" : ""}>
            {NAV.map((section) => {
              const items = section.items.filter((i) => atLeast(principal.role, i.needs));
              if (items.length === 0) return null;
              return (
                <div class="nav-group" key={section.group ?? "main"}>
                  {section.group && <span class="nav-group-label" aria-hidden="true">{section.group}</span>}
                  <ul>
                    {items.map((i) => (
                      <li key={i.href}>
                        <a href={i.href} aria-current={current === i.match ? "page" : undefined}>
                          {i.label}
                        </a>
                      </li>
                    ))}
                  </ul>
                </div>
              );
            })}
            <div class="user-box">
              <span class="who">
                Signed in as <strong>{principal.username}</strong> <span class="badge role">{principal.role}</span>
              </span>
              <button type="button" class="button small" onClick={() => void signOut()}>
                Sign out
              </button>
            </div>
          </nav>
        </header>
        <main id="main" tabIndex={-1}>
          <Screen route={route} role={principal.role} />
        </main>
      </div>
    </SessionContext.Provider>
  );
}

function Gate({ role, needs, children }: { role: Role; needs: Role; children: preact.ComponentChildren }) {
  if (!atLeast(role, needs)) {
    return (
      <section class="page narrow">
        <h1>Not available</h1>
        <p>This page needs the {needs} role. <a href="#/ask">Go to Ask</a>.</p>
      </section>
    );
  }
  return <>{children}</>;
}

function Screen({ route, role }: { route: Route; role: Role }) {
  const [first, second, third] = route.parts;
  if (!first || first === "ask") return <AskScreen conversationId={second ?? null} />;
  if (first === "admin") {
    let screen: preact.JSX.Element | null = null;
    if (second === "corpora") screen = <CorporaScreen />;
    else if (second === "documents") screen = <DocumentsScreen query={route.query} />;
    else if (second === "ingest") screen = <IngestScreen />;
    else if (second === "jobs") screen = third ? <JobDetailScreen id={third} /> : <JobsScreen />;
    else if (second === "users") screen = <UsersScreen selected={third ?? null} />;
    else if (second === "search") screen = <SearchScreen />;
    if (screen) return <Gate role={role} needs="admin">{screen}</Gate>;
  }
  if (first === "evals") {
    const screen =
      second === "compare" ? (
        <CompareScreen a={route.query.get("a") ?? ""} b={route.query.get("b") ?? ""} />
      ) : second ? (
        <EvalRunScreen id={second} />
      ) : (
        <EvalRunsScreen />
      );
    return <Gate role={role} needs="evaluator">{screen}</Gate>;
  }
  if (first === "feedback") return <Gate role={role} needs="evaluator"><FeedbackScreen /></Gate>;
  return (
    <section class="page narrow">
      <h1>Page not found</h1>
      <p>
        There is nothing at this address. <a href="#/ask">Go to Ask</a>.
      </p>
    </section>
  );
}
