// Who is signed in, and the corpora they may read: shared by every screen.
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Corpus, Principal, Role } from "./types";

export type Session = {
  principal: Principal;
  corpora: Corpus[];
  corporaError: string | null;
  reloadCorpora: () => Promise<void>;
};

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside a signed-in app");
  return session;
}

const RANK: Record<Role, number> = { reader: 0, evaluator: 1, admin: 2 };

export function atLeast(role: Role, needed: Role): boolean {
  return RANK[role] >= RANK[needed];
}
