// Status: the health checks (no token needed) and the overview of rates, latencies, errors and storage
// (the overview needs the admin scope when auth is on; a refusal is shown as such).

import { useEffect, useState } from "preact/hooks";
import { client } from "../../api/client.ts";
import type { Health, Overview } from "../../api/types.ts";
import { ErrorBox } from "../../components/ErrorBox.tsx";
import { formatValue } from "../../lib/query.ts";

const REFRESH_MS = 10_000;

export function Status() {
  const [health, setHealth] = useState<Health | null>(null);
  const [overview, setOverview] = useState<Overview | null>(null);
  const [healthError, setHealthError] = useState<unknown>(null);
  const [overviewError, setOverviewError] = useState<unknown>(null);
  useEffect(() => {
    const load = () => {
      client.health().then((h) => { setHealth(h); setHealthError(null); }, setHealthError);
      client.overview().then((o) => { setOverview(o); setOverviewError(null); }, setOverviewError);
    };
    load();
    const timer = setInterval(load, REFRESH_MS);
    return () => clearInterval(timer);
  }, []);
  return (
    <div class="status">
      <section class="panel">
        <h2>Health {health && <span class={`badge ${health.status}`}>{health.status}</span>}</h2>
        <ErrorBox error={healthError} />
        {health && (
          <>
            <p>Version {health.version} · up {duration(health.uptime_seconds)} · storage <b>{health.storage.backend}</b> {health.storage.status}
              {health.storage.disk_used_bytes != null && <> · {bytes(health.storage.disk_used_bytes)} on disk</>}
              {health.storage.error && <span class="error-inline"> · {health.storage.error}</span>}</p>
            <table class="results">
              <thead><tr><th>check</th><th>status</th><th>message</th><th>took</th></tr></thead>
              <tbody>
                {Object.entries(health.checks).map(([name, c]) => (
                  <tr><td>{name}</td><td><span class={`badge ${c.status}`}>{c.status}</span></td><td>{c.message ?? ""}</td><td class="num">{c.duration_ms} ms</td></tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </section>
      <section class="panel">
        <h2>Overview</h2>
        <ErrorBox error={overviewError} />
        {overview && <OverviewTables overview={overview} />}
      </section>
    </div>
  );
}

function OverviewTables({ overview }: { overview: Overview }) {
  const o = overview.overview;
  const groups: [string, Record<string, number | boolean | null>][] = [
    ["Ingestion", o.ingestion], ["Queries", o.queries], ["Latency (ms)", o.latency_ms], ["Errors", o.errors], ["Storage (collected)", o.collected],
  ];
  return (
    <>
      <p>Backend {overview.backend} · rates over the last {o.window_seconds == null ? "— (no collection yet)" : `${formatValue(o.window_seconds)} s`}</p>
      <div class="cards">
        {groups.map(([title, figures]) => (
          <div class="card">
            <h3>{title}</h3>
            <dl>
              {Object.entries(figures).map(([k, v]) => (
                <><dt>{k.replace(/_/g, " ")}</dt><dd>{show(k, v)}</dd></>
              ))}
            </dl>
          </div>
        ))}
      </div>
    </>
  );
}

function show(key: string, v: number | boolean | null): string {
  if (v === null) return "—";
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (key.endsWith("_bytes")) return bytes(v);
  if (key === "at_ms") return new Date(v).toISOString();
  return formatValue(v);
}

function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${formatValue(Number(n.toFixed(1)))} ${units[i]}`;
}

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600), m = Math.floor((seconds % 3600) / 60);
  return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m ${Math.floor(seconds % 60)}s`;
}
