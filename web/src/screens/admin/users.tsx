import { useCallback, useEffect, useState } from "preact/hooks";
import { api, messageOf } from "../../api";
import { useSession } from "../../session";
import type { ApiKey, Role, User } from "../../types";
import { ConfirmDialog, Empty, ErrorMessage, Loading } from "../../components/ui";
import { copyText } from "../../clipboard";
import { href } from "../../router";
import { when } from "../../format";

const ROLES: Role[] = ["reader", "evaluator", "admin"];

export function UsersScreen({ selected }: { selected: string | null }) {
  const [users, setUsers] = useState<User[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setUsers(await api<User[]>("/v1/users"));
      setError(null);
    } catch (e) {
      setError(messageOf(e));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  const user = users?.find((u) => u.username === selected) ?? null;

  return (
    <section class="page">
      <div class="page-head">
        <h1>Users</h1>
        <p class="muted">People and services that use Lore: their roles, API keys and the corpora they may read.</p>
      </div>
      <div class="two-col users-layout">
        <div class="stack">
          <NewUser onCreated={load} />
          <ErrorMessage error={error} onRetry={() => void load()} />
          {users === null && !error && <Loading />}
          {users && (
            <div class="table-wrap">
              <table>
                <caption>Users</caption>
                <thead>
                  <tr>
                    <th scope="col">Username</th>
                    <th scope="col">Role</th>
                    <th scope="col" class="hide-sm">Sign-in</th>
                    <th scope="col" class="hide-sm">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {users.map((u) => (
                    <tr key={u.id} class={u.username === selected ? "selected-row" : ""}>
                      <th scope="row">
                        <a href={href("admin", "users", u.username)} aria-current={u.username === selected ? "page" : undefined}>
                          {u.username}
                        </a>
                        {u.disabled && <span class="badge">disabled</span>}
                      </th>
                      <td>
                        <span class="badge role">{u.role}</span>
                      </td>
                      <td class="small hide-sm">{u.has_password ? "password" : "single sign-on"}</td>
                      <td class="small hide-sm">{when(u.created_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </div>
        <div>
          {user ? (
            <UserDetail user={user} key={user.username} />
          ) : (
            <Empty>
              <p>{selected && users ? `There is no user ${selected}.` : "Choose a user to manage their API keys and corpus grants."}</p>
            </Empty>
          )}
        </div>
      </div>
    </section>
  );
}

function NewUser({ onCreated }: { onCreated: () => Promise<void> }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<Role>("reader");
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const u = await api<User>("/v1/users", { method: "POST", json: { username: username.trim(), password: password || null, role } });
      setUsername("");
      setPassword("");
      setDone(`User ${u.username} created.`);
      await onCreated();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="card" aria-labelledby="new-user-title">
      <h2 id="new-user-title">New user</h2>
      <form onSubmit={submit} class="stack">
        <div class="field-row">
          <div class="field">
            <label for="new-username">Username</label>
            <input id="new-username" value={username} onInput={(e) => setUsername(e.currentTarget.value)} autoComplete="off" required />
          </div>
          <div class="field">
            <label for="new-password">Password</label>
            <input
              id="new-password"
              type="password"
              value={password}
              onInput={(e) => setPassword(e.currentTarget.value)}
              autoComplete="new-password"
              aria-describedby="new-password-hint"
            />
          </div>
          <div class="field">
            <label for="new-role">Role</label>
            <select id="new-role" value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
              {ROLES.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          </div>
        </div>
        <span id="new-password-hint" class="hint">
          At least 8 characters; leave it empty for someone who signs in only with single sign-on.
        </span>
        <ErrorMessage error={error} />
        {done && (
          <p role="status" class="notice">
            {done}
          </p>
        )}
        <div class="actions">
          <button type="submit" class="button primary" disabled={busy || !username.trim()}>
            Create user
          </button>
        </div>
      </form>
    </section>
  );
}

function UserDetail({ user }: { user: User }) {
  return (
    <section class="card stack" aria-label={`User ${user.username}`}>
      <h2>
        {user.username} <span class="badge role">{user.role}</span>
      </h2>
      <Keys user={user} />
      {user.role === "admin" ? (
        <div>
          <h3>Corpus grants</h3>
          <p class="muted small">Admins read every corpus; grants are not needed.</p>
        </div>
      ) : (
        <Grants user={user} />
      )}
    </section>
  );
}

function Keys({ user }: { user: User }) {
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [role, setRole] = useState<"" | Role>("");
  const [created, setCreated] = useState<ApiKey | null>(null);
  const [copied, setCopied] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const [revokeError, setRevokeError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setKeys(await api<ApiKey[]>("/v1/keys", { query: { username: user.username } }));
      setError(null);
    } catch (e) {
      setError(messageOf(e));
    }
  }, [user.username]);

  useEffect(() => {
    void load();
  }, [load]);

  const create = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const k = await api<ApiKey>("/v1/keys", { method: "POST", json: { username: user.username, name: name.trim(), role: role || null } });
      setCreated(k);
      setCopied(null);
      setName("");
      await load();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  const revoke = async () => {
    if (!revoking) return;
    setBusy(true);
    try {
      await api(`/v1/keys/${encodeURIComponent(revoking.id)}`, { method: "DELETE" });
      setRevoking(null);
      setRevokeError(null);
      await load();
    } catch (e) {
      setRevokeError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };

  const allowed = ROLES.slice(0, ROLES.indexOf(user.role) + 1);

  return (
    <div class="stack">
      <h3>API keys</h3>
      {created?.key && (
        <div class="key-reveal" role="alert">
          <p>
            <strong>This key is shown only once.</strong> Copy it now and keep it somewhere safe: Lore keeps only its hash.
          </p>
          <div class="field">
            <label for="new-key">New API key</label>
            <div class="copy-row">
              <input id="new-key" class="mono" readOnly value={created.key} onFocus={(e) => e.currentTarget.select()} />
              <button
                type="button"
                class="button small primary"
                onClick={() =>
                  void copyText(created.key!).then(
                    () => setCopied("Copied"),
                    (e) => setCopied(messageOf(e)),
                  )
                }
              >
                Copy key
              </button>
            </div>
          </div>
          <span role="status" class="small">
            {copied}
          </span>
          <div class="actions">
            <button type="button" class="button small" onClick={() => setCreated(null)}>
              Done
            </button>
          </div>
        </div>
      )}
      <form onSubmit={create} class="inline-form">
        <div class="field grow">
          <label for="key-name">Key name</label>
          <input id="key-name" value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="ci-pipeline" required />
        </div>
        <div class="field">
          <label for="key-role">Key role</label>
          <select id="key-role" value={role} onChange={(e) => setRole(e.currentTarget.value as "" | Role)}>
            <option value="">Same as the user ({user.role})</option>
            {allowed.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </div>
        <button type="submit" class="button" disabled={busy || !name.trim()}>
          Create key
        </button>
      </form>
      <ErrorMessage error={error} onRetry={() => void load()} />
      {keys && keys.length === 0 && <p class="muted small">No API keys.</p>}
      {keys && keys.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption>API keys</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col" class="hide-sm">Key</th>
                <th scope="col">Role</th>
                <th scope="col" class="hide-sm">Last used</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => (
                <tr key={k.id}>
                  <th scope="row">{k.name}</th>
                  <td class="mono small hide-sm">{k.display_prefix}…</td>
                  <td>{k.role}</td>
                  <td class="small hide-sm">{k.last_used_at ? when(k.last_used_at) : "never"}</td>
                  <td>
                    {k.revoked_at ? (
                      <span class="badge state-cancelled">revoked</span>
                    ) : (
                      <button type="button" class="button small danger-ghost" aria-label={`Revoke ${k.name}`} onClick={() => setRevoking(k)}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {revoking && (
        <ConfirmDialog
          title="Revoke key?"
          confirmLabel="Revoke"
          onConfirm={() => void revoke()}
          onCancel={() => {
            setRevoking(null);
            setRevokeError(null);
          }}
          busy={busy}
          error={revokeError}
        >
          <p>
            “{revoking.name}” ({revoking.display_prefix}…) stops working at once. Services using it will get 401.
          </p>
        </ConfirmDialog>
      )}
    </div>
  );
}

function Grants({ user }: { user: User }) {
  const { corpora } = useSession();
  const [grants, setGrants] = useState<string[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [pick, setPick] = useState("");
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    try {
      const list = await api<({ corpus: string } | string)[]>(`/v1/users/${encodeURIComponent(user.username)}/grants`);
      setGrants(list.map((g) => (typeof g === "string" ? g : g.corpus)));
      setError(null);
    } catch (e) {
      setError(messageOf(e));
    }
  }, [user.username]);

  useEffect(() => {
    void load();
  }, [load]);

  const change = async (method: "POST" | "DELETE", corpus: string) => {
    setBusy(true);
    setError(null);
    try {
      await api("/v1/grants", { method, json: { username: user.username, corpus } });
      if (method === "POST") setPick("");
      await load();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };

  const available = corpora.filter((c) => !grants?.includes(c.name));

  return (
    <div class="stack">
      <h3 id="grants-title">Corpus grants</h3>
      {grants && grants.length === 0 && <p class="muted small">No grants: {user.username} can ask about nothing yet.</p>}
      {grants && grants.length > 0 && (
        <ul class="grant-list" aria-labelledby="grants-title">
          {grants.map((g) => (
            <li key={g}>
              <span>{g}</span>
              <button type="button" class="button small danger-ghost" aria-label={`Remove grant ${g}`} disabled={busy} onClick={() => void change("DELETE", g)}>
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (pick) void change("POST", pick);
        }}
      >
        <div class="field grow">
          <label for="grant-corpus">Corpus to grant</label>
          <select id="grant-corpus" value={pick} onChange={(e) => setPick(e.currentTarget.value)}>
            <option value="">Choose a corpus…</option>
            {available.map((c) => (
              <option key={c.id} value={c.name}>
                {c.name}
              </option>
            ))}
          </select>
        </div>
        <button type="submit" class="button" disabled={busy || !pick}>
          Grant access
        </button>
      </form>
      <ErrorMessage error={error} onRetry={() => void load()} />
    </div>
  );
}
