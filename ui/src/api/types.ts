// The JSON API's shapes (docs/api.md), as the UI reads them.

export type QueryType = "range" | "aggregate" | "rate";
export type Aggregation = "avg" | "sum" | "count" | "min" | "max" | "p50" | "p95" | "p99" | "integral";
export const AGGREGATIONS: Aggregation[] = ["avg", "sum", "count", "min", "max", "p50", "p95", "p99", "integral"];

/** A filter value: the dimension equals it, or (a list) any of them. */
export type FilterValue = string | string[];

export interface Query {
  queryType: QueryType;
  metricName: string;
  timeRange: { relative: string } | { start: number | string; end: number | string };
  filters?: Record<string, FilterValue>;
  aggregation?: Aggregation;
  groupBy?: string[];
  interval?: string;
  limit?: number;
}

export type Dimensions = Record<string, string>;

export interface RangeAnswer {
  queryType: "range";
  results: { timestamp: number; value: number; dimensions: Dimensions }[];
  truncated: boolean;
  executionTimeMs: number;
}
export interface AggregateAnswer {
  queryType: "aggregate";
  results: { groupKey: Dimensions; value: number; count: number; points?: { timestamp: number; value: number; count: number }[] }[];
  truncated: boolean;
  executionTimeMs: number;
}
export interface RateAnswer {
  queryType: "rate";
  results: { groupKey: Dimensions; points: { timestamp: number; rate: number }[] }[];
  truncated: boolean;
  executionTimeMs: number;
}
export type QueryAnswer = RangeAnswer | AggregateAnswer | RateAnswer;

export interface DimensionValue { value: string; points: number }

export interface Health {
  status: string;
  version: string;
  uptime_seconds: number;
  storage: { backend: string; status: string; disk_used_bytes?: number; error?: string };
  checks: Record<string, { status: string; message?: string; duration_ms: number }>;
}

export interface Overview {
  version: string;
  uptime_seconds: number;
  backend: string;
  collector_interval_seconds: number;
  overview: {
    window_seconds: number | null;
    ingestion: Record<string, number | null>;
    queries: Record<string, number | null>;
    latency_ms: Record<string, number | null>;
    errors: Record<string, number | null>;
    collected: Record<string, number | boolean | null>;
  };
}

export interface Cardinality {
  metrics: { metric: string; series: number; dimensions: { key: string; distinct_values: number }[] }[];
}

/** A line of `GET /api/v1/dashboards`. */
export interface DashboardSummary { id: string; title: string; tags: string[]; version: number }
