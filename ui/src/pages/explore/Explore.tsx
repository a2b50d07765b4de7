// Explore: pick a metric, filter and group by its dimensions, run one query, see it as a chart and a
// table, take the JSON query or a curl away, or save it as a panel of a dashboard.

import { useEffect, useMemo, useState } from "preact/hooks";
import { client, tokenStore } from "../../api/client.ts";
import type { DashboardSummary, Query, QueryAnswer, QueryType } from "../../api/types.ts";
import { Chart } from "../../components/Chart.tsx";
import { ErrorBox } from "../../components/ErrorBox.tsx";
import { QueryFields, useDiscovery } from "../../components/QueryFields.tsx";
import type { Dashboard, Panel, PanelType } from "../../lib/dashboard.ts";
import { PANEL_TYPES } from "../../lib/dashboard.ts";
import { below, nextPanelId } from "../../lib/grid.ts";
import type { ExploreForm } from "../../lib/query.ts";
import { MAX_CHART_SERIES, buildQuery, capSeries, chartData, curlFor, formatTime, formatValue, tableRows } from "../../lib/query.ts";
import { navigate } from "../../lib/route.tsx";

const TABLE_ROWS = 500;

function initialForm(params: URLSearchParams): ExploreForm {
  return {
    metric: params.get("metric") ?? "",
    queryType: (params.get("queryType") as QueryType) ?? "aggregate",
    aggregation: "avg",
    filters: [],
    groupBy: params.getAll("groupBy"),
    interval: "",
    limit: "",
    range: params.get("range") ?? "1h",
  };
}

export function Explore({ params }: { params: URLSearchParams }) {
  const [form, setForm] = useState<ExploreForm>(() => initialForm(params));
  const { metrics, dimensions, error: loadError } = useDiscovery(form.metric);
  const [answer, setAnswer] = useState<QueryAnswer | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [running, setRunning] = useState(false);
  const [saving, setSaving] = useState(false);
  const update = (patch: Partial<ExploreForm>) => setForm((f) => ({ ...f, ...patch }));

  useEffect(() => { if (!form.metric && metrics.length > 0) update({ metric: metrics[0] }); }, [metrics]);

  const query = useMemo(() => buildQuery(form), [form]);
  const run = async () => {
    setRunning(true);
    setError(null);
    try {
      setAnswer(await client.query(query));
    } catch (e) {
      setAnswer(null);
      setError(e);
    } finally {
      setRunning(false);
    }
  };

  return (
    <div class="explore">
      <form class="panel query-form" onSubmit={(e) => { e.preventDefault(); run(); }}>
        <ErrorBox error={loadError} />
        <QueryFields form={form} update={update} metrics={metrics} dimensions={dimensions} />
        <div class="row">
          <button type="submit" class="primary" disabled={!form.metric || running}>{running ? "Running…" : "Run query"}</button>
          <button type="button" disabled={!form.metric} onClick={() => setSaving((s) => !s)}>{saving ? "Cancel" : "Save as panel…"}</button>
        </div>
        {saving && <SaveAsPanel query={query} bars={query.queryType === "aggregate" && !query.interval} />}
      </form>
      <ErrorBox error={error} />
      {answer && <Answer answer={answer} />}
      <QueryText query={query} />
    </div>
  );
}

/** "Save as panel": the current query becomes a panel of a chosen dashboard (appended on the left, below
 * its last row; saved with the version it was read at) or of a new one; then that dashboard opens. */
function SaveAsPanel({ query, bars }: { query: Query; bars: boolean }) {
  const [dashboards, setDashboards] = useState<DashboardSummary[] | null>(null);
  const [target, setTarget] = useState("");
  const [newTitle, setNewTitle] = useState("");
  const [title, setTitle] = useState(() => `${query.metricName}${query.aggregation ? ` ${query.aggregation}` : query.queryType === "rate" ? " rate" : ""}`);
  const [type, setType] = useState<PanelType>(bars ? "bar" : "timeseries");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    client.dashboards().then((list) => { setDashboards(list); setTarget(list[0]?.id ?? NEW); }, setError);
  }, []);
  const save = async () => {
    setError(null);
    setBusy(true);
    try {
      const panel = (panels: Panel[]): Panel => ({ id: nextPanelId(panels), title, type, gridPosition: below(panels, 12, 4), query: { ...query } });
      let id: string;
      if (target === NEW) {
        const dashboard: Dashboard = { id: slug(newTitle), title: newTitle.trim(), panels: [] };
        dashboard.panels.push(panel([]));
        id = (await client.importDashboard({ dashboard })).dashboard.id;
      } else {
        const { dashboard } = await client.dashboard(target);
        id = (await client.saveDashboard(target, { dashboard: { ...dashboard, panels: [...dashboard.panels, panel(dashboard.panels)] } })).dashboard.id;
      }
      navigate(`/ui/dashboards?id=${encodeURIComponent(id)}`);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const ready = title.trim() !== "" && target !== "" && (target !== NEW || newTitle.trim() !== "");
  return (
    <div class="save-panel">
      <div class="row">
        <label class="field">
          <span>Dashboard</span>
          <select name="saveDashboard" value={target} onChange={(e) => setTarget((e.target as HTMLSelectElement).value)}>
            {(dashboards ?? []).map((d) => <option value={d.id}>{d.title}</option>)}
            <option value={NEW}>a new dashboard…</option>
          </select>
        </label>
        {target === NEW && (
          <label class="field">
            <span>New dashboard's title</span>
            <input name="newDashboardTitle" value={newTitle} onInput={(e) => setNewTitle((e.target as HTMLInputElement).value)} />
          </label>
        )}
        <label class="field grow">
          <span>Panel title</span>
          <input name="panelTitle" value={title} onInput={(e) => setTitle((e.target as HTMLInputElement).value)} />
        </label>
        <label class="field">
          <span>Panel type</span>
          <select name="panelType" value={type} onChange={(e) => setType((e.target as HTMLSelectElement).value as PanelType)}>
            {PANEL_TYPES.map((t) => <option value={t}>{t}</option>)}
          </select>
        </label>
        <button type="button" class="primary" disabled={!ready || busy} onClick={save}>Save panel</button>
      </div>
      <ErrorBox error={error} />
    </div>
  );
}

const NEW = "\u0000new";

/** A dashboard id from a title: lower case, runs of other characters as `_` (`Checkout p95` → `checkout_p95`). */
function slug(title: string): string {
  return title.trim().toLowerCase().replace(/[^a-z0-9_-]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 128) || "dashboard";
}

function Answer({ answer }: { answer: QueryAnswer }) {
  const data = useMemo(() => chartData(answer), [answer]);
  const drawn = useMemo(() => capSeries(data), [data]);
  const rows = useMemo(() => tableRows(answer), [answer]);
  const timed = rows.some((r) => r.timestamp !== null);
  return (
    <div class="panel answer">
      <div class="answer-head">
        <span>{answer.queryType} · {data.kind === "bars" ? `${rows.length} groups` : `${data.labels.length} series · ${rows.length} rows`} · {answer.executionTimeMs} ms</span>
        {answer.truncated && <span class="truncated" title="a limit cut the answer: raise limit or narrow the filters">truncated — the answer was cut by a limit</span>}
      </div>
      {drawn !== data && <p class="muted">The chart draws the first {MAX_CHART_SERIES} of {data.labels.length} series; the table lists them all.</p>}
      {rows.length === 0 ? <p class="muted">No data in this range.</p> : <Chart data={drawn} />}
      {rows.length > 0 && (
        <div class="table-box">
          <table class="results">
            <thead><tr><th>series / group</th>{timed && <th>time (UTC)</th>}<th>value</th>{rows[0].count !== undefined && <th>count</th>}</tr></thead>
            <tbody>
              {rows.slice(0, TABLE_ROWS).map((r) => (
                <tr><td>{r.series}</td>{timed && <td>{r.timestamp === null ? "" : formatTime(r.timestamp)}</td>}<td class="num" data-value={String(r.value)}>{formatValue(r.value)}</td>{r.count !== undefined && <td class="num">{r.count}</td>}</tr>
              ))}
            </tbody>
          </table>
          {rows.length > TABLE_ROWS && <p class="muted">First {TABLE_ROWS} of {rows.length} rows shown.</p>}
        </div>
      )}
    </div>
  );
}

function QueryText({ query }: { query: object }) {
  const json = JSON.stringify(query, null, 2);
  const curl = curlFor(location.origin, query as never, tokenStore.get() !== null);
  return (
    <div class="panel query-text">
      <Copyable title="JSON query" text={json} />
      <Copyable title="curl" text={curl} />
    </div>
  );
}

function Copyable({ title, text }: { title: string; text: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <div class="copyable">
      <div class="copyable-head">
        <span>{title}</span>
        <button type="button" onClick={() => navigator.clipboard?.writeText(text).then(() => { setCopied(true); setTimeout(() => setCopied(false), 1500); })}>{copied ? "copied" : "copy"}</button>
      </div>
      <pre>{text}</pre>
    </div>
  );
}
