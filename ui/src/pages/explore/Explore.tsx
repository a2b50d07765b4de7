// Explore: pick a metric, filter and group by its dimensions, run one query, see it as a chart and a
// table, and take the JSON query or a curl away.

import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { client, tokenStore } from "../../api/client.ts";
import type { DimensionValue, QueryAnswer, QueryType } from "../../api/types.ts";
import { AGGREGATIONS } from "../../api/types.ts";
import { Chart } from "../../components/Chart.tsx";
import { ErrorBox } from "../../components/ErrorBox.tsx";
import type { ExploreForm } from "../../lib/query.ts";
import { ABSOLUTE, MAX_CHART_SERIES, RELATIVE_RANGES, buildQuery, capSeries, chartData, curlFor, effectiveInterval, formatTime, formatValue, tableRows } from "../../lib/query.ts";

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
  const [metrics, setMetrics] = useState<string[]>([]);
  const [dimensions, setDimensions] = useState<string[]>([]);
  const [answer, setAnswer] = useState<QueryAnswer | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [running, setRunning] = useState(false);
  const [loadError, setLoadError] = useState<unknown>(null);
  const update = (patch: Partial<ExploreForm>) => setForm((f) => ({ ...f, ...patch }));

  useEffect(() => {
    client.metrics().then((m) => { setMetrics(m); setLoadError(null); if (!form.metric && m.length > 0) update({ metric: m[0] }); }, setLoadError);
  }, []);
  useEffect(() => {
    setDimensions([]);
    if (!form.metric || !metrics.includes(form.metric)) return;
    client.dimensions(form.metric).then(setDimensions, setLoadError);
  }, [form.metric, metrics]);

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
        <div class="row">
          <label class="field grow">
            <span>Metric</span>
            <MetricPicker metrics={metrics} value={form.metric} onChange={(metric) => update({ metric, filters: [], groupBy: [] })} />
          </label>
          <label class="field">
            <span>Query type</span>
            <select name="queryType" value={form.queryType} onChange={(e) => update({ queryType: (e.target as HTMLSelectElement).value as QueryType })}>
              <option value="range">range (raw points)</option>
              <option value="aggregate">aggregate</option>
              <option value="rate">rate (counters)</option>
            </select>
          </label>
          {form.queryType === "aggregate" && (
            <label class="field">
              <span>Aggregation</span>
              <select name="aggregation" value={form.aggregation} onChange={(e) => update({ aggregation: (e.target as HTMLSelectElement).value as ExploreForm["aggregation"] })}>
                {AGGREGATIONS.map((a) => <option value={a}>{a}</option>)}
              </select>
            </label>
          )}
          <label class="field">
            <span>Time range</span>
            <select name="range" value={form.range} onChange={(e) => {
              const range = (e.target as HTMLSelectElement).value;
              if (range !== ABSOLUTE || form.start) return update({ range });
              // Start from the last hour, whole minutes.
              const end = Math.ceil(Date.now() / 60_000) * 60_000;
              const local = (ms: number) => new Date(ms).toISOString().slice(0, 16);
              update({ range, start: local(end - 3_600_000), end: local(end) });
            }}>
              {RELATIVE_RANGES.map((r) => <option value={r}>last {r}</option>)}
              <option value={ABSOLUTE}>from … to … (UTC)</option>
            </select>
          </label>
          {form.range === ABSOLUTE && (
            <>
              <label class="field">
                <span>From (UTC)</span>
                <input name="start" type="datetime-local" value={form.start ?? ""} onInput={(e) => update({ start: (e.target as HTMLInputElement).value })} />
              </label>
              <label class="field">
                <span>To (UTC, excluded)</span>
                <input name="end" type="datetime-local" value={form.end ?? ""} onInput={(e) => update({ end: (e.target as HTMLInputElement).value })} />
              </label>
            </>
          )}
          {form.queryType !== "range" && (
            <label class="field">
              <span>Interval</span>
              <IntervalInput form={form} onChange={(interval) => update({ interval })} />
            </label>
          )}
          <label class="field narrow">
            <span>Limit</span>
            <input name="limit" type="number" min={1} placeholder="default" value={form.limit} onInput={(e) => update({ limit: (e.target as HTMLInputElement).value })} />
          </label>
        </div>
        <Filters metric={form.metric} dimensions={dimensions} filters={form.filters} onChange={(filters) => update({ filters })} />
        {form.queryType !== "range" && dimensions.length > 0 && (
          <div class="row group-by">
            <span class="label">Group by</span>
            {dimensions.map((d) => (
              <label class="chip-toggle">
                <input
                  type="checkbox"
                  checked={form.groupBy.includes(d)}
                  onChange={(e) => update({ groupBy: (e.target as HTMLInputElement).checked ? [...form.groupBy, d] : form.groupBy.filter((g) => g !== d) })}
                />
                {d}
              </label>
            ))}
          </div>
        )}
        <div class="row">
          <button type="submit" class="primary" disabled={!form.metric || running}>{running ? "Running…" : "Run query"}</button>
        </div>
      </form>
      <ErrorBox error={error} />
      {answer && <Answer answer={answer} />}
      <QueryText query={query} />
    </div>
  );
}

function IntervalInput({ form, onChange }: { form: ExploreForm; onChange: (v: string) => void }) {
  const mode = form.interval === "" ? "auto" : form.interval === "none" ? "none" : "set";
  const auto = effectiveInterval({ ...form, interval: "" });
  return (
    <span class="interval">
      <select name="intervalMode" value={mode} onChange={(e) => {
        const m = (e.target as HTMLSelectElement).value;
        onChange(m === "auto" ? "" : m === "none" ? "none" : auto ?? "1m");
      }}>
        <option value="auto">auto ({auto})</option>
        {form.queryType === "aggregate" && <option value="none">none (one value per group)</option>}
        <option value="set">set…</option>
      </select>
      {mode === "set" && <input name="interval" class="narrow" value={form.interval} onInput={(e) => onChange((e.target as HTMLInputElement).value)} />}
    </span>
  );
}

function MetricPicker({ metrics, value, onChange }: { metrics: string[]; value: string; onChange: (m: string) => void }) {
  const [search, setSearch] = useState<string | null>(null);
  const shown = search === null ? [] : metrics.filter((m) => m.toLowerCase().includes(search.toLowerCase())).slice(0, 50);
  return (
    <div class="picker">
      <input
        name="metric"
        autocomplete="off"
        placeholder={metrics.length ? `search ${metrics.length} metrics` : "no metrics yet"}
        value={search ?? value}
        onFocus={() => setSearch("")}
        onInput={(e) => setSearch((e.target as HTMLInputElement).value)}
        onBlur={() => setTimeout(() => setSearch(null), 150)}
        onKeyDown={(e) => { if (e.key === "Enter" && shown.length > 0) { e.preventDefault(); onChange(shown[0]); setSearch(null); (e.target as HTMLInputElement).blur(); } }}
      />
      {search !== null && (
        <ul class="suggestions">
          {shown.map((m) => <li><button type="button" onMouseDown={() => { onChange(m); setSearch(null); }}>{m}</button></li>)}
          {shown.length === 0 && <li class="muted">no metric matches</li>}
        </ul>
      )}
    </div>
  );
}

function Filters({ metric, dimensions, filters, onChange }: { metric: string; dimensions: string[]; filters: ExploreForm["filters"]; onChange: (f: ExploreForm["filters"]) => void }) {
  const set = (i: number, patch: Partial<ExploreForm["filters"][number]>) => onChange(filters.map((f, j) => (j === i ? { ...f, ...patch } : f)));
  return (
    <div class="filters">
      {filters.map((f, i) => (
        <div class="row filter">
          <select name="filterKey" value={f.key} onChange={(e) => set(i, { key: (e.target as HTMLSelectElement).value, values: [] })}>
            <option value="">dimension…</option>
            {dimensions.map((d) => <option value={d}>{d}</option>)}
          </select>
          <span class="muted">{f.values.length > 1 ? "is any of" : "is"}</span>
          {f.values.map((v) => (
            <span class="chip">{v === "" ? "(empty)" : v}<button type="button" title="remove" onClick={() => set(i, { values: f.values.filter((x) => x !== v) })}>×</button></span>
          ))}
          {f.key && <ValueInput metric={metric} dimension={f.key} onPick={(v) => { if (!f.values.includes(v)) set(i, { values: [...f.values, v] }); }} />}
          <button type="button" class="link" onClick={() => onChange(filters.filter((_, j) => j !== i))}>remove filter</button>
        </div>
      ))}
      <button type="button" class="link" disabled={dimensions.length === 0} onClick={() => onChange([...filters, { key: "", values: [] }])}>+ add filter</button>
    </div>
  );
}

/** A value box that suggests stored values by prefix, most frequent first. */
function ValueInput({ metric, dimension, onPick }: { metric: string; dimension: string; onPick: (v: string) => void }) {
  const [text, setText] = useState("");
  const [open, setOpen] = useState(false);
  const [values, setValues] = useState<DimensionValue[]>([]);
  const [error, setError] = useState<unknown>(null);
  const timer = useRef<number>(0);
  useEffect(() => {
    if (!open) return;
    const abort = new AbortController();
    clearTimeout(timer.current);
    timer.current = window.setTimeout(() => {
      client.values(metric, dimension, text, 20, abort.signal).then((v) => { setValues(v); setError(null); }, (e) => { if ((e as Error).name !== "AbortError") setError(e); });
    }, 150);
    return () => { clearTimeout(timer.current); abort.abort(); };
  }, [metric, dimension, text, open]);
  const pick = (v: string) => { onPick(v); setText(""); };
  return (
    <div class="picker value-input">
      <input
        name="filterValue"
        autocomplete="off"
        placeholder="value (prefix)…"
        value={text}
        onFocus={() => setOpen(true)}
        onBlur={() => setTimeout(() => setOpen(false), 150)}
        onInput={(e) => setText((e.target as HTMLInputElement).value)}
        onKeyDown={(e) => { if (e.key === "Enter") { e.preventDefault(); pick(values[0]?.value === text || !text ? values[0]?.value ?? text : text); } }}
      />
      {open && (
        <ul class="suggestions">
          <ErrorBox error={error} />
          {values.map((v) => (
            <li><button type="button" onMouseDown={(e) => { e.preventDefault(); pick(v.value); }}>{v.value === "" ? "(empty)" : v.value}<span class="muted">{formatValue(v.points)} pts</span></button></li>
          ))}
          {values.length === 0 && !error && <li class="muted">no value starts with “{text}”</li>}
        </ul>
      )}
    </div>
  );
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
