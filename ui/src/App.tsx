// The shell: navigation, the token dialog (opened on any 401 or by hand), and the current page.

import { useEffect, useState } from "preact/hooks";
import { client, tokenStore } from "./api/client.ts";
import { Cardinality } from "./pages/cardinality/Cardinality.tsx";
import { Dashboards } from "./pages/dashboards/Dashboards.tsx";
import { Explore } from "./pages/explore/Explore.tsx";
import { Status } from "./pages/status/Status.tsx";
import { TokenDialog } from "./components/TokenDialog.tsx";
import { Link, useRoute } from "./lib/route.tsx";

const PAGES: [string, string][] = [["explore", "Explore"], ["dashboards", "Dashboards"], ["cardinality", "Cardinality"], ["status", "Status"]];

export function App() {
  const route = useRoute();
  const [asking, setAsking] = useState(false);
  // Remounting the page after a token change reloads it with the token.
  const [generation, setGeneration] = useState(0);
  useEffect(() => { client.onUnauthorized = () => setAsking(true); }, []);
  const page = route.page;
  return (
    <>
      <header class="top">
        <span class="brand">Luminate</span>
        <nav>{PAGES.map(([id, title]) => <Link href={`/ui/${id}`} class={page === id ? "active" : ""}>{title}</Link>)}</nav>
        <button type="button" class="token-button" onClick={() => setAsking(true)}>{tokenStore.get() ? "Token ✓" : "Token"}</button>
      </header>
      <main key={`${page}-${generation}`}>
        {page === "explore" && <Explore params={route.params} />}
        {page === "dashboards" && <Dashboards params={route.params} />}
        {page === "cardinality" && <Cardinality />}
        {page === "status" && <Status />}
        {!PAGES.some(([id]) => id === page) && <p>No page “{page}”. <Link href="/ui/explore">Explore</Link></p>}
      </main>
      {asking && <TokenDialog onClose={(changed) => { setAsking(false); if (changed) setGeneration((g) => g + 1); }} />}
    </>
  );
}
