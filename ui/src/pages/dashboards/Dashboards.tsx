// Dashboards: the tenant's dashboards by tag, import of a file, and one dashboard viewed on its
// 24-column grid — variables as selectors, a time range and a refresh interval, every panel running its
// query as the model resolves it (lib/dashboard.ts) and drawn by its type. Export downloads the file.

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { client } from "../../api/client.ts";
import type { DashboardSummary, QueryAnswer } from "../../api/types.ts";
import { Chart, type ChartLook } from "../../components/Chart.tsx";
import { ErrorBox } from "../../components/ErrorBox.tsx";
import { type Choices, type Dashboard, type Panel, type Variable, formatNumber, gridArea, level, panelQuery, parseDuration, selected } from "../../lib/dashboard.ts";
import { capSeries, chartData, formatTime, RELATIVE_RANGES, tableRows } from "../../lib/query.ts";
import { Link, navigate } from "../../lib/route.tsx";

export function Dashboards({ params }: { params: URLSearchParams }) {
  const id = params.get("id");
  return id ? <DashboardView id={id} /> : <DashboardList tag={params.get("tag") ?? ""} />;
}

function DashboardList({ tag }: { tag: string }) {
  const [all, setAll] = useState<DashboardSummary[] | null>(null);
  const [shown, setShown] = useState<DashboardSummary[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => { client.dashboards().then(setAll, setError); }, []);
  useEffect(() => { setShown(null); client.dashboards(tag || undefined).then(setShown, setError); }, [tag]);
  const tags = useMemo(() => [...new Set((all ?? []).flatMap((d) => d.tags))].sort(), [all]);
  return (
    <>
      <div class="panel">
        <div class="row">
          <h2 class="grow-title">Dashboards</h2>
          <ImportButton />
        </div>
        <div class="row tags">
          <span class="label">Tag</span>
          <Link href="/ui/dashboards" class={tag === "" ? "tag active" : "tag"}>all</Link>
          {tags.map((t) => <Link href={`/ui/dashboards?tag=${encodeURIComponent(t)}`} class={t === tag ? "tag active" : "tag"}>{t}</Link>)}
        </div>
        <ErrorBox error={error} />
        {shown === null ? <p class="muted">Loading…</p> : shown.length === 0 ? (
          <p class="muted">No dashboards{tag ? ` tagged “${tag}”` : ""}. Import a JSON file (the design's <code>{`{"dashboard": {...}}`}</code>), e.g. one of <code>deploy/dashboards/</code>.</p>
        ) : (
          <table class="results dashboards">
            <thead><tr><th>title</th><th>id</th><th>tags</th><th>version</th></tr></thead>
            <tbody>
              {shown.map((d) => (
                <tr>
                  <td><Link href={`/ui/dashboards?id=${encodeURIComponent(d.id)}`}>{d.title}</Link></td>
                  <td><code>{d.id}</code></td>
                  <td>{d.tags.map((t) => <Link href={`/ui/dashboards?tag=${encodeURIComponent(t)}`} class="tag">{t}</Link>)}</td>
                  <td class="num">{d.version}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </>
  );
}

/** Imports a dashboard file (POST) and opens it; a refusal (invalid document, id taken) in the server's words. */
function ImportButton() {
  const [error, setError] = useState<unknown>(null);
  const input = useRef<HTMLInputElement>(null);
  const load = async (file: File) => {
    setError(null);
    try {
      let document: unknown;
      try { document = JSON.parse(await file.text()); } catch (e) { throw new Error(`${file.name} is not JSON: ${(e as Error).message}`); }
      const saved = await client.importDashboard(document);
      navigate(`/ui/dashboards?id=${encodeURIComponent(saved.dashboard.id)}`);
    } catch (e) {
      setError(e);
    } finally {
      if (input.current) input.current.value = "";
    }
  };
  return (
    <div class="import">
      <label class="button">Import JSON file…
        <input ref={input} type="file" name="import" accept="application/json,.json" hidden onChange={(e) => { const f = (e.target as HTMLInputElement).files?.[0]; if (f) void load(f); }} />
      </label>
      <ErrorBox error={error} />
    </div>
  );
}

/** Offers `text` as a file download. */
function download(name: string, text: string) {
  const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

const REFRESH_CHOICES = ["", "10s", "30s", "1m", "5m", "15m"];

function DashboardView({ id }: { id: string }) {
  const [dashboard, setDashboard] = useState<Dashboard | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [choices, setChoices] = useState<Choices>({});
  /** "" keeps the dashboard's range. */
  const [range, setRange] = useState("");
  const [refresh, setRefresh] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const [editing, setEditing] = useState(false);
  useEffect(() => { client.dashboard(id).then((f) => setDashboard(f.dashboard), setError); }, [id]);
  const every = refresh ?? dashboard?.refreshInterval ?? "";
  useEffect(() => {
    const ms = parseDuration(every);
    if (!ms) return;
    const timer = setInterval(() => setTick((t) => t + 1), ms);
    return () => clearInterval(timer);
  }, [every]);
  const exportFile = async () => {
    try {
      const file = await client.dashboard(id);
      download(`${id}.json`, `${JSON.stringify(file, null, 2)}\n`);
    } catch (e) { setError(e); }
  };
  if (error) return <><p><Link href="/ui/dashboards">← Dashboards</Link></p><ErrorBox error={error} /></>;
  if (!dashboard) return <p class="muted">Loading…</p>;
  const dashboardRange = (dashboard.timeRange?.relative as string | undefined) ?? "custom";
  const timeRange = range ? { relative: range } : undefined;
  const rows = Math.max(1, ...dashboard.panels.map((p) => p.gridPosition.y + p.gridPosition.h));
  return (
    <>
      <div class="panel dash-head">
        <div class="row">
          <div class="grow-title">
            <Link href="/ui/dashboards">Dashboards</Link> / <strong class="dash-title">{dashboard.title}</strong>
            {(dashboard.tags ?? []).map((t) => <Link href={`/ui/dashboards?tag=${encodeURIComponent(t)}`} class="tag">{t}</Link>)}
            <span class="muted"> · version {dashboard.version}</span>
          </div>
          <button type="button" onClick={() => setEditing((e) => !e)}>{editing ? "Close editor" : "Edit JSON"}</button>
          <button type="button" onClick={exportFile}>Export JSON</button>
        </div>
        <div class="row">
          {(dashboard.variables ?? []).map((v) => (
            <VariablePicker variable={v} choices={choices} onChange={(value) => setChoices((c) => ({ ...c, [v.name]: value }))} />
          ))}
          <label class="field">
            <span>Time range</span>
            <select name="range" value={range} onChange={(e) => setRange((e.target as HTMLSelectElement).value)}>
              <option value="">dashboard's ({dashboardRange})</option>
              {RELATIVE_RANGES.map((r) => <option value={r}>last {r}</option>)}
            </select>
          </label>
          <label class="field">
            <span>Refresh</span>
            <select name="refresh" value={every} onChange={(e) => setRefresh((e.target as HTMLSelectElement).value)}>
              {[...new Set([...REFRESH_CHOICES, every])].map((r) => <option value={r}>{r ? `every ${r}` : "off"}</option>)}
            </select>
          </label>
          <button type="button" onClick={() => setTick((t) => t + 1)}>Refresh now</button>
        </div>
      </div>
      {editing && <JsonEditor dashboard={dashboard} onSaved={(saved) => { setDashboard(saved); setEditing(false); }} />}
      <div class="dash-grid" style={{ gridTemplateRows: `repeat(${rows}, var(--row))` }}>
        {dashboard.panels.map((p) => (
          <PanelView panel={p} query={panelQuery(dashboard, p, choices, timeRange)} tick={tick} />
        ))}
      </div>
    </>
  );
}

/** The whole document as JSON (panels, their queries, display and grid positions, variables), saved
 * with `PUT` naming the version it was read at: a save over a newer version is refused with 409, shown
 * as such. */
function JsonEditor({ dashboard, onSaved }: { dashboard: Dashboard; onSaved: (saved: Dashboard) => void }) {
  const [text, setText] = useState(() => JSON.stringify(dashboard, null, 2));
  const [error, setError] = useState<unknown>(null);
  const [saving, setSaving] = useState(false);
  const save = async () => {
    setError(null);
    let document: unknown;
    try { document = JSON.parse(text); } catch (e) { setError(new Error(`not JSON: ${(e as Error).message}`)); return; }
    setSaving(true);
    try { onSaved((await client.saveDashboard(dashboard.id, document)).dashboard); } catch (e) { setError(e); } finally { setSaving(false); }
  };
  return (
    <div class="panel editor">
      <p class="muted">The dashboard as JSON (read at version {dashboard.version}): edit panels, their <code>gridPosition</code>, queries and display, or add one, then save.</p>
      <textarea name="dashboardJson" rows={20} spellcheck={false} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
      <ErrorBox error={error} />
      <div class="row"><button type="button" class="primary" disabled={saving} onClick={save}>Save</button></div>
    </div>
  );
}

/** A variable's selector: its choices from `options` or its `listDimensionValues` query; several may be
 * ticked when `multi`. Nothing chosen means all values (the filter is dropped). */
function VariablePicker({ variable, choices, onChange }: { variable: Variable; choices: Choices; onChange: (value: string | string[]) => void }) {
  const [values, setValues] = useState<string[]>(variable.options ?? []);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (variable.type !== "query" || !variable.query) return;
    client.variableValues(variable.query).then(setValues, setError);
  }, [variable]);
  const chosen = selected(variable, choices);
  const label = variable.label ?? variable.name;
  // The multi-select's list closes on a click elsewhere, as a select would.
  const details = useRef<HTMLDetailsElement>(null);
  useEffect(() => {
    const close = (e: MouseEvent) => { if (details.current && !details.current.contains(e.target as Node)) details.current.open = false; };
    addEventListener("mousedown", close);
    return () => removeEventListener("mousedown", close);
  }, []);
  if (!variable.multi) {
    return (
      <label class="field variable">
        <span>{label}</span>
        <select name={`var-${variable.name}`} value={chosen[0] ?? ""} onChange={(e) => { const v = (e.target as HTMLSelectElement).value; onChange(v === "" ? [] : v); }}>
          <option value="">all</option>
          {values.map((v) => <option value={v}>{v}</option>)}
        </select>
        {error != null && <span class="error-inline">{(error as Error).message}</span>}
      </label>
    );
  }
  const toggle = (v: string) => onChange(chosen.includes(v) ? chosen.filter((c) => c !== v) : [...chosen, v]);
  return (
    <div class="field variable">
      <span>{label}</span>
      <details class="multi" data-variable={variable.name} ref={details}>
        <summary>{chosen.length === 0 ? "all" : chosen.join(", ")}</summary>
        <div class="multi-options">
          {values.map((v) => (
            <label><input type="checkbox" value={v} checked={chosen.includes(v)} onChange={() => toggle(v)} /> {v}</label>
          ))}
          {values.length === 0 && <span class="muted">no values</span>}
          <button type="button" class="link" onClick={() => onChange([])}>all (clear)</button>
        </div>
      </details>
      {error != null && <span class="error-inline">{(error as Error).message}</span>}
    </div>
  );
}

/** Pixel height of one grid row (--row in styles.css) and the gap between rows. */
const ROW_PX = 84;
const GAP_PX = 12;

function PanelView({ panel, query, tick }: { panel: Panel; query: Record<string, unknown>; tick: number }) {
  const text = JSON.stringify(query);
  // The last answer stays on screen while the next is fetched; `for` says which query it answered.
  const [shown, setShown] = useState<{ for: string; answer: QueryAnswer | null; error: unknown } | null>(null);
  const [loading, setLoading] = useState(true);
  useEffect(() => {
    const abort = new AbortController();
    setLoading(true);
    client.rawQuery(JSON.parse(text), abort.signal).then(
      (answer) => { setShown({ for: text, answer, error: null }); setLoading(false); },
      (error) => { if ((error as Error).name !== "AbortError") { setShown({ for: text, answer: null, error }); setLoading(false); } },
    );
    return () => abort.abort();
  }, [text, tick]);
  const height = panel.gridPosition.h * ROW_PX + (panel.gridPosition.h - 1) * GAP_PX;
  const state = loading || shown?.for !== text ? "loading" : shown.error ? "error" : "drawn";
  return (
    <section class={`panel dash-panel type-${panel.type}`} style={{ gridArea: gridArea(panel.gridPosition) }} data-panel-id={panel.id} data-query={text} data-state={state}>
      <h3 title={text}>{panel.title}{shown?.answer?.truncated && <span class="truncated">truncated</span>}</h3>
      {shown === null ? <p class="muted">Loading…</p> : shown.error ? <ErrorBox error={shown.error} /> : shown.answer && <PanelBody panel={panel} answer={shown.answer} height={height} />}
    </section>
  );
}

function PanelBody({ panel, answer, height }: { panel: Panel; answer: QueryAnswer; height: number }) {
  const display = panel.display ?? {};
  const data = useMemo(() => capSeries(chartData(answer)), [answer]);
  const rows = useMemo(() => tableRows(answer), [answer]);
  const look = useMemo<ChartLook>(() => ({
    legend: panel.type === "bar" ? { show: false } : { show: display.legend?.show ?? true, position: display.legend?.position ?? "bottom" },
    format: (v: number) => formatNumber(v, display),
    threshold: display.threshold,
  }), [panel]);
  if (rows.length === 0) return <p class="muted">No data in this range.</p>;
  switch (panel.type) {
    case "timeseries":
    case "bar": {
      // Room for the title and, below the plot, a legend of a line or two.
      // About one legend entry per 4 grid columns fits a line (the time entry is one too).
      const perLine = Math.max(1, Math.floor(panel.gridPosition.w / 4));
      const legendRows = look.legend?.show && look.legend.position !== "right" ? Math.min(4, Math.ceil((data.labels.length + 1) / perLine)) : 0;
      const plotHeight = Math.max(80, height - 52 - legendRows * 24);
      return <Chart data={data} height={plotHeight} look={look} />;
    }
    case "gauge":
      return <Gauge panel={panel} answer={answer} />;
    case "table": {
      const timed = rows.some((r) => r.timestamp !== null);
      return (
        <div class="table-box">
          <table class="results">
            <thead><tr><th>series / group</th>{timed && <th>time (UTC)</th>}<th>value</th>{rows[0].count !== undefined && <th>count</th>}</tr></thead>
            <tbody>
              {rows.slice(0, 500).map((r) => (
                <tr><td>{r.series}</td>{timed && <td>{r.timestamp === null ? "" : formatTime(r.timestamp)}</td>}<td class={`num level-${level(r.value, display.threshold)}`} data-value={String(r.value)}>{formatNumber(r.value, display)}</td>{r.count !== undefined && <td class="num">{r.count}</td>}</tr>
              ))}
            </tbody>
          </table>
        </div>
      );
    }
  }
}

/** The gauge's values: one per group, the group's value (or, bucketed, its latest bucket). */
function gaugeValues(answer: QueryAnswer): { label: string; value: number }[] {
  const data = chartData(answer);
  if (data.kind === "bars") return data.series[0].map((v, i) => ({ label: data.categories?.[i] ?? "", value: v as number }));
  return data.labels.map((label, i) => {
    const column = data.series[i];
    for (let j = column.length - 1; j >= 0; j--) if (column[j] !== null) return { label, value: column[j] as number };
    return { label, value: NaN };
  });
}

function Gauge({ panel, answer }: { panel: Panel; answer: QueryAnswer }) {
  const display = panel.display ?? {};
  const values = gaugeValues(answer);
  const [first, ...rest] = values;
  return (
    <div class="gauge">
      <div class={`gauge-value level-${level(first.value, display.threshold)}`} data-value={String(first.value)}>{formatNumber(first.value, display)}</div>
      <div class="muted">{first.label}</div>
      {display.threshold && (
        <div class="gauge-thresholds muted">
          {display.threshold.warning !== undefined && <span class="level-warning">warning ≥ {formatNumber(display.threshold.warning, display)}</span>}
          {display.threshold.critical !== undefined && <span class="level-critical">critical ≥ {formatNumber(display.threshold.critical, display)}</span>}
        </div>
      )}
      {rest.length > 0 && (
        <ul class="gauge-rest">{rest.slice(0, 8).map((v) => <li><span>{v.label}</span> <span class={`level-${level(v.value, display.threshold)}`} data-value={String(v.value)}>{formatNumber(v.value, display)}</span></li>)}</ul>
      )}
    </div>
  );
}
