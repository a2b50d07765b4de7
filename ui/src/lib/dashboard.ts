// The dashboard rules every client shares, ported from luminate-model's `dashboard` module so that the
// page runs exactly the query the server validates: the auto interval (interval.rs), variable
// substitution (variables.rs) and a panel's resolved query (resolve.rs); plus how a panel formats its
// numbers and where a value stands against its thresholds.

import type { FilterValue } from "../api/types.ts";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `90s`, `15m`, `1h`, `7d`, `2w` → milliseconds; null when it is not such a duration. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+)(ms|s|m|h|d|w)$/.exec(text.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2]] : null;
}

/** The model's ladder (interval.rs `LADDER`), smallest first, spelled as the model formats it. */
export const LADDER = ["1s", "2s", "5s", "10s", "15s", "30s", "1m", "2m", "5m", "10m", "15m", "30m", "1h", "3h", "6h", "12h", "1d", "1w", "30d"];
/** Most buckets an auto interval gives. */
export const MAX_BUCKETS = 300;

/** The smallest ladder step splitting `spanMs` into at most 300 buckets (the largest for a longer span). */
export function autoInterval(spanMs: number): string {
  for (const step of LADDER) {
    if (Math.ceil(spanMs / (parseDuration(step) as number)) <= MAX_BUCKETS) return step;
  }
  return LADDER[LADDER.length - 1];
}

/** The variable a filter value refers to, if it is exactly `$name` or `${name}`. */
export function reference(value: string): string | null {
  if (!value.startsWith("$")) return null;
  let name = value.slice(1);
  if (name.startsWith("{")) {
    if (!name.endsWith("}")) return null;
    name = name.slice(1, -1);
  }
  return /^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name) ? name : null;
}

/** `filters` with variable references replaced by what `bind(name)` gives (null: undeclared, the filter
 * left as written). One value → a string (an element of a list stays in a list), several → an any-of
 * list, none → the filter dropped. */
export function substitute(filters: Record<string, FilterValue>, bind: (name: string) => string[] | null): Record<string, FilterValue> {
  const out: Record<string, FilterValue> = {};
  for (const [key, value] of Object.entries(filters)) {
    const wasList = Array.isArray(value);
    const items = wasList ? value : [value];
    const expanded: string[] = [];
    let referenced = false;
    let declared = true;
    for (const item of items) {
      const name = typeof item === "string" ? reference(item) : null;
      if (name === null) { expanded.push(item); continue; }
      const values = bind(name);
      if (values === null) { declared = false; break; }
      referenced = true;
      expanded.push(...values);
    }
    if (!declared || !referenced) { out[key] = value; continue; }
    if (expanded.length === 0) continue;
    out[key] = expanded.length === 1 && !wasList ? expanded[0] : expanded;
  }
  return out;
}

export type PanelType = "timeseries" | "table" | "gauge" | "bar";
export const PANEL_TYPES: PanelType[] = ["timeseries", "bar", "table", "gauge"];

export interface Variable {
  name: string;
  label?: string;
  type: "query" | "custom";
  query?: Record<string, unknown>;
  options?: string[];
  multi?: boolean;
  default?: FilterValue;
}

export interface Display {
  unit?: string;
  decimals?: number;
  threshold?: { warning?: number; critical?: number };
  legend?: { show?: boolean; position?: "bottom" | "right" };
}

export interface Panel {
  id: string;
  title: string;
  type: PanelType;
  gridPosition: { x: number; y: number; w: number; h: number };
  query: Record<string, unknown>;
  display?: Display;
}

export interface Dashboard {
  id: string;
  title: string;
  tags?: string[];
  timeRange?: Record<string, unknown>;
  refreshInterval?: string;
  panels: Panel[];
  variables?: Variable[];
  schemaVersion?: number;
  version?: number;
}

/** What the viewer chose, by variable name (absent: not chosen, so the default applies). */
export type Choices = Record<string, FilterValue>;

/** The milliseconds a query time range spans (relative, or start/end as Unix ms or RFC 3339). */
export function spanOf(range: Record<string, unknown>): number | null {
  if (typeof range.relative === "string") return parseDuration(range.relative);
  const at = (v: unknown) => (typeof v === "number" ? v : typeof v === "string" ? Date.parse(v) : NaN);
  const start = at(range.start), end = at(range.end);
  return Number.isNaN(start) || Number.isNaN(end) ? null : Math.abs(end - start);
}

/** `panel`'s query as the viewer runs it (resolve.rs `panel_query`): variables replaced (chosen, else
 * the default, else all values: the filter dropped), the viewer's time range (else the dashboard's)
 * where the query has none, and the auto interval for a bucketed timeseries panel without one. */
export function panelQuery(dashboard: Dashboard, panel: Panel, choices: Choices, timeRange?: Record<string, unknown>): Record<string, unknown> {
  const query: Record<string, unknown> = { ...panel.query };
  const bind = (name: string): string[] | null => {
    const variable = dashboard.variables?.find((v) => v.name === name);
    if (!variable) return null;
    const chosen = choices[name] ?? variable.default;
    return chosen === undefined ? [] : Array.isArray(chosen) ? [...chosen] : [chosen];
  };
  if (query.filters && typeof query.filters === "object") {
    query.filters = substitute(query.filters as Record<string, FilterValue>, bind);
  }
  if (query.queryType === "listDimensionValues") return query;
  const range = timeRange ?? dashboard.timeRange;
  if (!("timeRange" in query) && range) query.timeRange = range;
  const bucketed = query.queryType === "aggregate" || query.queryType === "rate";
  if (panel.type === "timeseries" && bucketed && !("interval" in query) && query.timeRange) {
    const span = spanOf(query.timeRange as Record<string, unknown>);
    if (span !== null) query.interval = autoInterval(span);
  }
  return query;
}

/** A panel's number: `decimals` digits (else up to 4 significant decimals), then the unit. */
export function formatNumber(v: number | null | undefined, display: Display = {}): string {
  if (v == null) return "—";
  if (!Number.isFinite(v)) return String(v);
  const text = display.decimals !== undefined
    ? v.toLocaleString("en-US", { minimumFractionDigits: display.decimals, maximumFractionDigits: display.decimals })
    : Number.isInteger(v) ? v.toLocaleString("en-US") : Number(v.toPrecision(6)).toLocaleString("en-US", { maximumFractionDigits: 4 });
  return display.unit ? `${text} ${display.unit}` : text;
}

export type Level = "ok" | "warning" | "critical";

/** Where a value stands against the panel's thresholds: at or above `critical`, at or above `warning`, else ok. */
export function level(v: number | null | undefined, threshold: Display["threshold"]): Level {
  if (v == null || !threshold) return "ok";
  if (threshold.critical !== undefined && v >= threshold.critical) return "critical";
  if (threshold.warning !== undefined && v >= threshold.warning) return "warning";
  return "ok";
}

/** A panel's place on the CSS grid (`grid-area`, 1-based lines). */
export function gridArea(p: Panel["gridPosition"]): string {
  return `${p.y + 1} / ${p.x + 1} / span ${p.h} / span ${p.w}`;
}

/** The variable's choice as the selector shows it: chosen, else its default, else nothing (all values). */
export function selected(variable: Variable, choices: Choices): string[] {
  const v = choices[variable.name] ?? variable.default;
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}
