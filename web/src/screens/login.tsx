import { useEffect, useState } from "preact/hooks";
import { messageOf, providers, signIn, type Providers } from "../api";

export function Login({ onSignedIn }: { onSignedIn: () => Promise<void> }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [auth, setAuth] = useState<Providers | null>(null);

  useEffect(() => {
    void providers().then(setAuth);
  }, []);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(username, password);
      await onSignedIn();
    } catch (err) {
      setError(messageOf(err));
      setBusy(false);
    }
  };

  return (
    <main id="main" class="login-screen">
      <div class="login-card">
        <div class="login-brand" aria-hidden="true">
          <span class="brand-mark">L</span>
        </div>
        <h1>Sign in to Lore</h1>
        <p class="muted">Answers from your organisation's documents, with their sources.</p>
        {(auth === null || auth.password) && (
          <form onSubmit={submit} class="stack">
            <div class="field">
              <label for="login-username">Username</label>
              <input
                id="login-username"
                name="username"
                autoComplete="username"
                value={username}
                onInput={(e) => setUsername(e.currentTarget.value)}
                required
                autoFocus
              />
            </div>
            <div class="field">
              <label for="login-password">Password</label>
              <input
                id="login-password"
                name="password"
                type="password"
                autoComplete="current-password"
                value={password}
                onInput={(e) => setPassword(e.currentTarget.value)}
                required
              />
            </div>
            {error && (
              <div class="error" role="alert">
                {error}
              </div>
            )}
            <button type="submit" class="button primary block" disabled={busy}>
              {busy ? "Signing in…" : "Sign in"}
            </button>
          </form>
        )}
        {auth?.oidc && (
          <>
            <div class="divider">
              <span>or</span>
            </div>
            <a class="button block" href={auth.oidc.login_url}>
              Sign in with single sign-on
            </a>
          </>
        )}
      </div>
    </main>
  );
}
