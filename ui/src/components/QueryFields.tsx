// The query form's fields, shared by Explore and the dashboard panel editor: metric (searched),
// query type, aggregation, time range, interval, limit, filters with value autocomplete, group by.

import { useEffect, useRef, useState } from "preact/hooks";
import { client } from "../api/client.ts";
import type { DimensionValue, QueryType } from "../api/types.ts";
import { AGGREGATIONS } from "../api/types.ts";
import type { ExploreForm } from "../lib/query.ts";
import { ABSOLUTE, DASHBOARD_RANGE, RELATIVE_RANGES, effectiveInterval, formatValue } from "../lib/query.ts";
import { ErrorBox } from "./ErrorBox.tsx";

/** The tenant's metrics, and the dimension keys of `metric` once it is one of them. */
export function useDiscovery(metric: string) {
  const [metrics, setMetrics] = useState<string[]>([]);
  const [dimensions, setDimensions] = useState<string[]>([]);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => { client.metrics().then((m) => { setMetrics(m); setError(null); }, setError); }, []);
  useEffect(() => {
    setDimensions([]);
    if (!metric || !metrics.includes(metric)) return;
    client.dimensions(metric).then(setDimensions, setError);
  }, [metric, metrics]);
  return { metrics, dimensions, error };
}

/** The fields; `panel` offers "the dashboard's" time range and leaves an auto interval to the panel. */
export function QueryFields({ form, update, metrics, dimensions, panel = false }: {
  form: ExploreForm;
  update: (patch: Partial<ExploreForm>) => void;
  metrics: string[];
  dimensions: string[];
  panel?: boolean;
}) {
  return (
    <>
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
            {panel && <option value={DASHBOARD_RANGE}>the dashboard's</option>}
            {[...new Set([...RELATIVE_RANGES, ...(form.range && form.range !== ABSOLUTE ? [form.range] : [])])].map((r) => <option value={r}>last {r}</option>)}
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
          <IntervalInput form={form} panel={panel} onChange={(interval) => update({ interval })} />
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
    </>
  );
}

/** Auto, none (an aggregate's one value per group) or a set duration. For a panel "auto" leaves the
 * interval out, and the panel's type decides (lib/query.ts `buildPanelQuery`). */
function IntervalInput({ form, panel, onChange }: { form: ExploreForm; panel: boolean; onChange: (v: string) => void }) {
  const mode = form.interval === "" ? "auto" : form.interval === "none" ? "none" : "set";
  const auto = panel ? "by panel type" : effectiveInterval({ ...form, interval: "" });
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
