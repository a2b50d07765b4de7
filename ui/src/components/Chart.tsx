// A uPlot chart of aligned columns: lines over time, or bars over groups. The uPlot instance is kept on
// the container element (`.uplot`), which is how the browser tests read what was plotted. A dashboard
// panel passes its legend, its number format (unit, decimals) and its thresholds (dashed lines).

import { useLayoutEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { ChartData } from "../lib/query.ts";
import { measureOnce } from "../lib/timing.ts";
import { barLabels, formatValue } from "../lib/query.ts";

export interface ChartLook {
  legend?: { show?: boolean; position?: "bottom" | "right" };
  format?: (v: number) => string;
  threshold?: { warning?: number; critical?: number };
}

const THRESHOLD_COLOURS = { warning: "#d97706", critical: "#dc2626" } as const;

/** Dashed horizontal lines at the thresholds inside the plot's range. */
function thresholdLines(threshold: ChartLook["threshold"]) {
  return (u: uPlot) => {
    const ctx = u.ctx;
    for (const key of ["warning", "critical"] as const) {
      const at = threshold?.[key];
      if (at === undefined) continue;
      const y = u.valToPos(at, "y", true);
      if (y < u.bbox.top || y > u.bbox.top + u.bbox.height) continue;
      ctx.save();
      ctx.strokeStyle = THRESHOLD_COLOURS[key];
      ctx.setLineDash([6, 4]);
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(u.bbox.left, y);
      ctx.lineTo(u.bbox.left + u.bbox.width, y);
      ctx.stroke();
      ctx.restore();
    }
  };
}

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#9333ea", "#ea580c"];

const PLAIN: ChartLook = {};

/** Every chart measures its first drawing as `luminate:chart-draw:<name>` (a panel's id, else `chart`;
 * from building its options to uPlot's first `draw`, detail: series and x values), always on: the speed
 * benchmark reads it. */
export function Chart({ data, height = 320, look = PLAIN, onDrawn, name }: { data: ChartData; height?: number; look?: ChartLook; onDrawn?: () => void; name?: string }) {
  const box = useRef<HTMLDivElement>(null);
  const drawnRef = useRef(onDrawn);
  drawnRef.current = onDrawn;
  // A layout effect, not an effect: the box is observed as soon as it is in the page, so the chart is
  // built in the frame that first lays it out, not a frame later (Preact runs effects after a
  // requestAnimationFrame, or 100 ms without one).
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    const started = performance.now();
    let first = true;
    const firstDraw = () => {
      if (!first) return;
      first = false;
      measureOnce(`luminate:chart-draw:${name ?? "chart"}`, { start: started, detail: { series: data.series.length, x: data.x.length } });
      drawnRef.current?.();
    };
    const bars = data.kind === "bars";
    const right = look.legend?.position === "right" && look.legend.show !== false && !bars;
    // A legend on the right takes its share of the width.
    const widthOf = (box: number) => Math.max(Math.round(box) - (right ? 190 : 0), 200);
    const format = look.format ?? formatValue;
    const optionsAt = (width: number): uPlot.Options => ({
      width,
      height,
      legend: { show: !bars && look.legend?.show !== false },
      // UTC, like the table and the absolute time range.
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      cursor: { drag: { x: !bars, y: false } },
      scales: {
        x: { time: !bars, range: bars ? (_u, min, max) => [min - 0.6, max + 0.6] : undefined },
        // Bars measure from zero (a negative value reaches below it).
        y: bars ? { range: (_u, min, max) => [Math.min(0, min), Math.max(0, max) * 1.1 || 1] } : {},
      },
      axes: [
        bars
          ? {
            // Labels cut to the room of a bar (uPlot's bbox is in device pixels).
            values: (u, splits) => {
              const labels = barLabels(data.categories ?? [], u.bbox.width / devicePixelRatio / Math.max(1, data.x.length));
              return splits.map((i) => labels[i] ?? "");
            },
            splits: () => data.x, gap: 4, size: 60,
          }
          : {},
        // As wide as its longest label (about 7 px a character), so `50,000,000 ms` is not cut.
        { values: (_u, splits) => splits.map(format), size: (_u, values) => Math.max(50, 16 + 7 * Math.max(0, ...(values ?? []).map((v) => String(v).length))) },
      ],
      series: [
        { label: bars ? "group" : "time" },
        ...data.labels.map((label, i) => ({
          label,
          stroke: PALETTE[i % PALETTE.length],
          // One pixel, Grafana's default. A 1.5 px line is not a hairline to Chromium's software
          // rasteriser: the 50 × 300 chart of bench/ui.sh took 60 ms of the renderer's main thread to
          // rasterise at 1.5 px, under 7 ms at 1, on the two cores the server's queries need (docs/ui.md).
          width: bars ? 0 : 1,
          fill: bars ? PALETTE[i % PALETTE.length] + "cc" : undefined,
          paths: bars ? uPlot.paths.bars?.({ size: [0.6, 80] }) : undefined,
          points: { show: !bars && data.x.length < 60 },
          value: (_u: uPlot, v: number | null) => (v == null ? "—" : format(v)),
          spanGaps: false,
        })),
      ],
      hooks: { draw: look.threshold ? [thresholdLines(look.threshold), firstDraw] : [firstDraw] },
    });
    // Built at the observer's first callback, which comes after the browser's own layout in the same
    // frame and brings the box's width: reading `clientWidth` here, right after the page changed,
    // forced a layout of the whole page per chart. Later callbacks resize it, only on a change (a
    // same-size `setSize` clears and redraws the canvas).
    let plot: uPlot | null = null;
    const resize = new ResizeObserver((entries) => {
      const width = widthOf(entries[entries.length - 1].contentRect.width);
      if (plot === null) {
        plot = new uPlot(optionsAt(width), [data.x, ...data.series] as uPlot.AlignedData, el);
        (el as HTMLDivElement & { uplot?: uPlot }).uplot = plot;
      } else if (width !== plot.width || height !== plot.height) {
        plot.setSize({ width, height });
      }
    });
    resize.observe(el);
    return () => { resize.disconnect(); plot?.destroy(); };
  }, [data, height, look]);
  return <div class={`chart${look.legend?.position === "right" ? " legend-right" : ""}`} ref={box} />;
}
