// Explore's logic, apart from the page so that node --test checks it: the form's state → the JSON query,
// the automatic interval, the copyable curl, and an answer → the chart's aligned columns and the table.

import type { Aggregation, FilterValue, Query, QueryAnswer, QueryType } from "../api/types.ts";

/** What the Explore form holds. `interval` "" means auto; "none" asks an aggregate for one value per group. */
export interface ExploreForm {
  metric: string;
  queryType: QueryType;
  aggregation: Aggregation;
  filters: { key: string; values: string[] }[];
  groupBy: string[];
  interval: string;
  limit: string;
  /** A relative duration ending now (`1h`), or `absolute` for [start, end). */
  range: string;
  /** With `range: "absolute"`: `datetime-local` values, read as UTC (`2026-12-04T19:00`). */
  start?: string;
  end?: string;
  /** Fields of an edited panel's query the form does not show (`timeout`, …), sent back as they were. */
  extra?: Record<string, unknown>;
}

export const ABSOLUTE = "absolute";

export const RELATIVE_RANGES = ["5m", "15m", "1h", "6h", "24h", "7d", "30d"];

/** A panel's range choice meaning "no `timeRange` in the query": the dashboard's applies. */
export const DASHBOARD_RANGE = "";

// One auto-interval rule and one duration parser for every page: the model's (lib/dashboard.ts).
export { autoInterval, parseDuration } from "./dashboard.ts";
import { autoInterval, parseDuration } from "./dashboard.ts";

/** A `datetime-local` value read as UTC → Unix ms; null when empty or not a date. */
export function utcMs(local: string | undefined): number | null {
  if (!local) return null;
  const ms = Date.parse(`${local}${local.length === 16 ? ":00" : ""}Z`);
  return Number.isNaN(ms) ? null : ms;
}

/** How long the form's time range is (an hour when it cannot tell). */
export function rangeMs(form: ExploreForm): number {
  if (form.range === ABSOLUTE) {
    const start = utcMs(form.start), end = utcMs(form.end);
    return start !== null && end !== null && end > start ? end - start : 3_600_000;
  }
  return parseDuration(form.range) ?? 3_600_000;
}

/** The interval the query will carry: the form's, the automatic one, or none. */
export function effectiveInterval(form: ExploreForm): string | undefined {
  if (form.queryType === "range") return undefined;
  const chosen = form.interval.trim();
  if (chosen === "none") return form.queryType === "rate" ? autoInterval(rangeMs(form)) : undefined;
  if (chosen !== "") return chosen;
  return autoInterval(rangeMs(form));
}

/** The JSON query for the form. Values are sent as typed: the server's checks speak for themselves. */
export function buildQuery(form: ExploreForm): Query {
  // An absolute bound that is not a date goes as typed: the server says what is wrong with it.
  const timeRange = form.range === ABSOLUTE
    ? { start: utcMs(form.start) ?? form.start ?? "", end: utcMs(form.end) ?? form.end ?? "" }
    : { relative: form.range };
  const query: Query = { queryType: form.queryType, metricName: form.metric, timeRange };
  const filters: Record<string, FilterValue> = {};
  for (const f of form.filters) {
    if (!f.key || f.values.length === 0) continue;
    filters[f.key] = f.values.length === 1 ? f.values[0] : [...f.values];
  }
  if (Object.keys(filters).length > 0) query.filters = filters;
  if (form.queryType === "aggregate") query.aggregation = form.aggregation;
  if (form.queryType !== "range" && form.groupBy.length > 0) query.groupBy = [...form.groupBy];
  const interval = effectiveInterval(form);
  if (interval) query.interval = interval;
  const limit = form.limit.trim();
  if (limit !== "") query.limit = Number(limit);
  return query;
}

/** The query a dashboard panel keeps for the form: as `buildQuery`, but without a `timeRange` when the
 * range is the dashboard's, without an `interval` unless one is set (the panel's type then decides:
 * the auto interval for a timeseries, one value per group otherwise), and with the fields the form
 * does not show put back. */
export function buildPanelQuery(form: ExploreForm): Record<string, unknown> {
  const query: Record<string, unknown> = { ...buildQuery(form) };
  if (form.range === DASHBOARD_RANGE) delete query.timeRange;
  const interval = form.interval.trim();
  if (interval === "" || interval === "none") delete query.interval;
  for (const [key, value] of Object.entries(form.extra ?? {})) if (!(key in query)) query[key] = value;
  return query;
}

const FORM_FIELDS = new Set(["queryType", "metricName", "timeRange", "filters", "aggregation", "groupBy", "interval", "limit"]);

/** Unix ms (or an RFC 3339 text) → a `datetime-local` value in UTC; the text itself when not a date. */
function localOf(at: unknown): string {
  const ms = typeof at === "number" ? at : typeof at === "string" ? Date.parse(at) : NaN;
  return Number.isNaN(ms) ? String(at ?? "") : new Date(ms).toISOString().slice(0, 16);
}

/** The form showing a stored query (a panel's): the inverse of `buildPanelQuery`. */
export function formOf(query: Record<string, unknown>): ExploreForm {
  const range = query.timeRange as { relative?: string; start?: unknown; end?: unknown } | undefined;
  const filters = Object.entries((query.filters ?? {}) as Record<string, FilterValue>)
    .map(([key, value]) => ({ key, values: Array.isArray(value) ? [...value] : [value] }));
  const extra = Object.fromEntries(Object.entries(query).filter(([key]) => !FORM_FIELDS.has(key)));
  return {
    metric: typeof query.metricName === "string" ? query.metricName : "",
    queryType: (query.queryType as QueryType | undefined) ?? "aggregate",
    aggregation: (query.aggregation as Aggregation | undefined) ?? "avg",
    filters,
    groupBy: Array.isArray(query.groupBy) ? [...(query.groupBy as string[])] : [],
    interval: typeof query.interval === "string" ? query.interval : "",
    limit: query.limit === undefined ? "" : String(query.limit),
    range: !range ? DASHBOARD_RANGE : typeof range.relative === "string" ? range.relative : ABSOLUTE,
    ...(range && range.relative === undefined ? { start: localOf(range.start), end: localOf(range.end) } : {}),
    ...(Object.keys(extra).length > 0 ? { extra } : {}),
  };
}

/** A shell-safe single-quoted word. */
function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The query as a curl command; the token is referenced, never written out. */
export function curlFor(origin: string, query: Query, withToken: boolean): string {
  const parts = [`curl -sS -X POST ${shellQuote(`${origin}/api/v1/query`)}`, `-H 'Content-Type: application/json'`];
  if (withToken) parts.push(`-H "Authorization: Bearer $LUMINATE_TOKEN"`);
  parts.push(`-d ${shellQuote(JSON.stringify(query))}`);
  return parts.join(" \\\n  ");
}

/** `{}` → "all"; `{a: "x", b: "y"}` → "a=x, b=y". */
export function labelOf(dimensions: Record<string, string>): string {
  const keys = Object.keys(dimensions).sort();
  return keys.length === 0 ? "all" : keys.map((k) => `${k}=${dimensions[k]}`).join(", ");
}

/** What the chart draws: x (Unix seconds for time, or group positions for bars) and one column per
 * series, aligned to x (null where a series has no point). */
export interface ChartData {
  kind: "lines" | "bars";
  labels: string[];
  x: number[];
  series: (number | null)[][];
  /** For bars: the group under each x. */
  categories?: string[];
}

/** At most this many series are drawn (a chart of more is unreadable, and slow); the table has them all. */
export const MAX_CHART_SERIES = 50;

/** The first `max` series of a line chart (bars are one series already). */
export function capSeries(data: ChartData, max = MAX_CHART_SERIES): ChartData {
  if (data.kind === "bars" || data.labels.length <= max) return data;
  return { ...data, labels: data.labels.slice(0, max), series: data.series.slice(0, max) };
}

/** The bars' axis labels when each bar has `pxPerBar` pixels and a character takes about `charPx`: a
 * label longer than its room is cut (`…`); when a bar has room for fewer than 4 characters only every
 * n-th bar is labelled, with the room of n bars. The full names are in the table and the tooltip. */
export function barLabels(categories: string[], pxPerBar: number, charPx = 7): string[] {
  const fit = (label: string, chars: number) => (label.length <= chars ? label : `${label.slice(0, Math.max(1, chars - 1))}…`);
  const chars = Math.floor(pxPerBar / charPx);
  if (chars >= 4) return categories.map((c) => fit(c, chars));
  const every = Math.ceil((4 * charPx) / Math.max(pxPerBar, 1));
  return categories.map((c, i) => (i % every === 0 ? fit(c, Math.floor((every * pxPerBar) / charPx)) : ""));
}

/** One table row. */
export interface Row { series: string; timestamp: number | null; value: number; count?: number }

function align(labels: string[], points: Map<string, Map<number, number>>): ChartData {
  const times = new Set<number>();
  for (const byTime of points.values()) for (const t of byTime.keys()) times.add(t);
  const x = [...times].sort((a, b) => a - b);
  const series = labels.map((label) => {
    const byTime = points.get(label) as Map<number, number>;
    return x.map((t) => (byTime.has(t) ? (byTime.get(t) as number) : null));
  });
  return { kind: "lines", labels, x: x.map((t) => t / 1000), series };
}

/** The answer as aligned chart columns: lines over time for range, bucketed aggregates and rates; bars
 * for an aggregate without interval. */
export function chartData(answer: QueryAnswer): ChartData {
  const points = new Map<string, Map<number, number>>();
  const labels: string[] = [];
  const add = (label: string, t: number, v: number) => {
    let byTime = points.get(label);
    if (!byTime) { byTime = new Map(); points.set(label, byTime); labels.push(label); }
    byTime.set(t, v);
  };
  switch (answer.queryType) {
    case "range":
      for (const p of answer.results) add(labelOf(p.dimensions), p.timestamp, p.value);
      return align(labels, points);
    case "rate":
      for (const r of answer.results) {
        const label = labelOf(r.groupKey);
        for (const p of r.points) add(label, p.timestamp, p.rate);
      }
      return align(labels, points);
    case "aggregate":
      if (answer.results.some((r) => r.points)) {
        // A group's label once, not per point (15 000 of them in a 50 × 300 chart).
        for (const r of answer.results) {
          const label = labelOf(r.groupKey);
          for (const p of r.points ?? []) add(label, p.timestamp, p.value);
        }
        return align(labels, points);
      }
      return {
        kind: "bars",
        labels: ["value"],
        x: answer.results.map((_, i) => i),
        series: [answer.results.map((r) => r.value)],
        categories: answer.results.map((r) => labelOf(r.groupKey)),
      };
  }
}

/** Whether the answer has a row at all (what `tableRows(answer).length > 0` says, without building them). */
export function hasRows(answer: QueryAnswer): boolean {
  switch (answer.queryType) {
    case "range": return answer.results.length > 0;
    case "rate": return answer.results.some((r) => r.points.length > 0);
    case "aggregate": return answer.results.some((r) => !r.points || r.points.length > 0);
  }
}

/** The answer as table rows, in the answer's order. */
export function tableRows(answer: QueryAnswer): Row[] {
  switch (answer.queryType) {
    case "range":
      return answer.results.map((p) => ({ series: labelOf(p.dimensions), timestamp: p.timestamp, value: p.value }));
    case "rate":
      return answer.results.flatMap((r): Row[] => r.points.map((p) => ({ series: labelOf(r.groupKey), timestamp: p.timestamp, value: p.rate })));
    case "aggregate":
      return answer.results.flatMap((r): Row[] =>
        r.points
          ? r.points.map((p) => ({ series: labelOf(r.groupKey), timestamp: p.timestamp, value: p.value, count: p.count }))
          : [{ series: labelOf(r.groupKey), timestamp: null, value: r.value, count: r.count }],
      );
  }
}

/** A number for a person: up to 4 significant decimals, no exponent for everyday sizes. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  return Number(v.toPrecision(6)).toLocaleString("en-US", { maximumFractionDigits: 4 });
}

/** Unix ms → `2026-12-04 19:40:00` in UTC. */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.000Z$/, "").replace("Z", "");
}
