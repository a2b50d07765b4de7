// The UI's own performance measures (always on, cheap): the speed benchmark (bench/ui.mjs) reads them
// with performance.getEntriesByName. Each name keeps only its latest entry, so that a page left open —
// refreshing, or a panel dragged around — does not grow the browser's timeline without bound.

/** `performance.measure(name, options)`, replacing an earlier entry of the same name. */
export function measureOnce(name: string, options: PerformanceMeasureOptions): void {
  performance.clearMeasures(name);
  performance.measure(name, options);
}
