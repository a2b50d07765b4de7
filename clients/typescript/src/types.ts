// The request and response shapes of Luminate's JSON API, as the contract (shared/CONTRACT.md) and
// docs/api.md define them.

/** Unix milliseconds, or an RFC 3339 date-time string. */
export type Timestamp = number | string;
/** A duration: one positive integer and a unit, "90s", "15m", "1h", "7d", "2w". */
export type Duration = string;
export type Dimensions = Record<string, string>;

/** A point to write. `timestamp` may also be a Date; none is now. */
export interface Point {
  name: string;
  value: number;
  timestamp?: Timestamp | Date;
  dimensions?: Dimensions;
}

/** A point the write route refused (in a `207` or `400` answer). */
export interface PointError {
  index: number;
  metric: string;
  code: string;
  error: string;
}

/** The write route's answer. */
export interface WriteResult {
  accepted: number;
  rejected: number;
  errors: PointError[];
}

export type Aggregation = "avg" | "sum" | "count" | "min" | "max" | "p50" | "p95" | "p99" | "integral";
export type TimeRange = { relative: Duration } | { start: Timestamp; end: Timestamp };
/** A filter value: the dimension equals it, or (a list) any of them. */
export type FilterValue = string | string[];

interface QueryCommon {
  metricName: string;
  timeRange: TimeRange;
  filters?: Record<string, FilterValue>;
  limit?: number;
  timeout?: Duration;
}

export interface RangeQuery extends QueryCommon {
  queryType: "range";
}
export interface AggregateQuery extends QueryCommon {
  queryType: "aggregate";
  aggregation: Aggregation;
  groupBy?: string[];
  interval?: Duration;
}
export interface RateQuery extends QueryCommon {
  queryType: "rate";
  interval: Duration;
  groupBy?: string[];
}
/** A dimension's values (what a dashboard variable lists); no time range: every stored point counts. */
export interface ListDimensionValuesQuery {
  queryType: "listDimensionValues";
  metricName: string;
  dimension: string;
  limit?: number;
  prefix?: string;
  timeout?: Duration;
}
export type Query = RangeQuery | AggregateQuery | RateQuery | ListDimensionValuesQuery;

interface AnswerCommon {
  truncated: boolean;
  executionTimeMs: number;
}
export interface RangeAnswer extends AnswerCommon {
  queryType: "range";
  results: { timestamp: number; value: number; dimensions: Dimensions }[];
}
export interface AggregateAnswer extends AnswerCommon {
  queryType: "aggregate";
  /** `points` only with `interval`; `value` and `count` then cover the whole range. */
  results: { groupKey: Dimensions; value: number; count: number; points?: { timestamp: number; value: number; count: number }[] }[];
}
export interface RateAnswer extends AnswerCommon {
  queryType: "rate";
  results: { groupKey: Dimensions; points: { timestamp: number; rate: number }[] }[];
}
export interface ListDimensionValuesAnswer extends AnswerCommon {
  queryType: "listDimensionValues";
  results: DimensionValue[];
}
export type QueryAnswer = RangeAnswer | AggregateAnswer | RateAnswer | ListDimensionValuesAnswer;
/** The answer type of a query type. */
export type AnswerOf<Q extends Query> = Extract<QueryAnswer, { queryType: Q["queryType"] }>;

/** A value of a dimension and the points stored with it. */
export interface DimensionValue {
  value: string;
  points: number;
}

export interface MetricCardinality {
  metric: string;
  series: number;
  dimensions: { key: string; distinct_values: number }[];
}

/** A line of `GET /api/v1/dashboards`. */
export interface DashboardSummary {
  id: string;
  title: string;
  tags: string[];
  version: number;
}

/** A panel of a dashboard (docs/dashboards.md). */
export interface Panel {
  id: string;
  title: string;
  type?: "timeseries" | "table" | "gauge" | "bar";
  gridPosition: { x: number; y: number; w: number; h: number };
  /** A query of `POST /api/v1/query`, whose filter values may name variables; may leave out `timeRange`. */
  query: Record<string, unknown>;
  display?: {
    unit?: string;
    decimals?: number;
    threshold?: { warning?: number; critical?: number };
    legend?: { show?: boolean; position?: "bottom" | "right" };
  };
}

/** A dashboard variable (docs/dashboards.md). */
export interface Variable {
  name: string;
  label?: string;
  type: "query" | "custom";
  query?: ListDimensionValuesQuery;
  options?: string[];
  multi?: boolean;
  default?: string | string[];
}

/** A dashboard document; `version` is kept by the server (1 at creation, +1 at every replace). */
export interface Dashboard {
  id: string;
  title: string;
  tags?: string[];
  timeRange?: TimeRange;
  refreshInterval?: Duration;
  panels?: Panel[];
  variables?: Variable[];
  schemaVersion?: number;
  version?: number;
}

/** A dashboard file: what export gives and import takes. */
export interface DashboardFile {
  dashboard: Dashboard;
}

/** `GET /api/v1/health`. */
export interface Health {
  status: "healthy" | "degraded" | "unhealthy";
  version: string;
  uptime_seconds: number;
  storage: { backend: string; status: string; disk_used_bytes: number | null; error?: string };
  checks: Record<string, { status: "pass" | "warn" | "fail"; message?: string; duration_ms: number }>;
}
