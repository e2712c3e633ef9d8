import { Theme } from "@radix-ui/themes";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { lazy, Suspense, useEffect } from "react";
import { createBrowserRouter, RouterProvider } from "react-router";
import { ApiError } from "./api/errors";
import { session } from "./api/session";
import { Layout } from "./components/Layout";
import { RequireAuth } from "./components/RequireAuth";
import { TableSkeleton } from "./components/States";
import { ThemeChoiceProvider, useThemeChoice } from "./components/theme";

const Landing = lazy(() => import("./pages/Landing"));
const SignIn = lazy(() => import("./pages/SignIn"));
const Register = lazy(() => import("./pages/Register"));
const Market = lazy(() => import("./pages/Market"));
const AssetPage = lazy(() => import("./pages/AssetPage"));
const Portfolio = lazy(() => import("./pages/Portfolio"));
const Orders = lazy(() => import("./pages/Orders"));
const Cash = lazy(() => import("./pages/Cash"));
const ProfilePage = lazy(() => import("./pages/Profile"));
const NotFound = lazy(() => import("./pages/NotFound"));

function page(element: React.ReactNode) {
  return <Suspense fallback={<TableSkeleton label="Loading page" />}>{element}</Suspense>;
}

const router = createBrowserRouter([
  {
    element: <Layout />,
    children: [
      { path: "/", element: page(<Landing />) },
      { path: "/signin", element: page(<SignIn />) },
      { path: "/register", element: page(<Register />) },
      { path: "/market", element: page(<Market />) },
      { path: "/market/:assetId", element: page(<AssetPage />) },
      {
        element: <RequireAuth />,
        children: [
          { path: "/portfolio", element: page(<Portfolio />) },
          { path: "/orders", element: page(<Orders />) },
          { path: "/cash", element: page(<Cash />) },
          { path: "/profile", element: page(<ProfilePage />) },
        ],
      },
      { path: "*", element: page(<NotFound />) },
    ],
  },
]);

export const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // A refusal (4xx) will not change by asking again; a 5xx or the network may.
      retry: (count, error) => !(error instanceof ApiError && error.status >= 400 && error.status < 500) && count < 2,
      refetchOnWindowFocus: false,
    },
  },
});

function Themed() {
  const { resolved } = useThemeChoice();
  useEffect(() => {
    void session.restore();
  }, []);
  return (
    <Theme appearance={resolved} accentColor="indigo" grayColor="slate" radius="medium">
      <RouterProvider router={router} />
    </Theme>
  );
}

export function App() {
  return (
    <QueryClientProvider client={queryClient}>
      <ThemeChoiceProvider>
        <Themed />
      </ThemeChoiceProvider>
    </QueryClientProvider>
  );
}
