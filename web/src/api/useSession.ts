import { useSyncExternalStore } from "react";
import { session, type SessionState } from "./session";

export function useSession(): SessionState {
  return useSyncExternalStore(
    (listener) => session.subscribe(listener),
    () => session.current,
  );
}
