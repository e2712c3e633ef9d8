import { Flex, Skeleton } from "@radix-ui/themes";
import { Navigate, Outlet, useLocation } from "react-router";
import { useSession } from "../api/useSession";

/** Pages for signed-in people: the others go to sign-in and come back afterwards. */
export function RequireAuth() {
  const state = useSession();
  const location = useLocation();
  if (state.status === "unknown") {
    return (
      <Flex direction="column" gap="3" role="status" aria-label="Restoring your session">
        <Skeleton height="32px" width="40%" />
        <Skeleton height="200px" />
      </Flex>
    );
  }
  if (state.status === "anonymous") {
    const next = location.pathname + location.search;
    return (
      <Navigate
        to={`/signin?next=${encodeURIComponent(next)}`}
        replace
        state={{ expired: state.reason === "expired" }}
      />
    );
  }
  return <Outlet />;
}
