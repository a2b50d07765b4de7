// The app's own routes under /ui/: path-based (the server falls back to index.html under the prefix).

import { useEffect, useState } from "preact/hooks";

export const PREFIX = "/ui";

export function currentPage(): { page: string; params: URLSearchParams } {
  const rest = location.pathname.startsWith(PREFIX) ? location.pathname.slice(PREFIX.length) : "";
  const page = rest.replace(/^\/+|\/+$/g, "") || "explore";
  return { page, params: new URLSearchParams(location.search) };
}

export function navigate(href: string): void {
  history.pushState(null, "", href);
  dispatchEvent(new PopStateEvent("popstate"));
}

export function useRoute() {
  const [route, setRoute] = useState(currentPage);
  useEffect(() => {
    const update = () => setRoute(currentPage());
    addEventListener("popstate", update);
    return () => removeEventListener("popstate", update);
  }, []);
  return route;
}

/** An in-app link: no reload. */
export function Link({ href, children, class: cls }: { href: string; children: preact.ComponentChildren; class?: string }) {
  return (
    <a href={href} class={cls} onClick={(e) => { if (e.ctrlKey || e.metaKey || e.shiftKey) return; e.preventDefault(); navigate(href); }}>
      {children}
    </a>
  );
}
