// A uPlot chart of aligned columns: lines over time, or bars over groups. The uPlot instance is kept on
// the container element (`.uplot`), which is how the browser test reads what was plotted.

import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { ChartData } from "../lib/query.ts";
import { formatValue } from "../lib/query.ts";

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#9333ea", "#ea580c"];

export function Chart({ data, height = 320 }: { data: ChartData; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = Math.max(el.clientWidth, 300);
    const bars = data.kind === "bars";
    const options: uPlot.Options = {
      width,
      height,
      legend: { show: !bars },
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
          ? { values: (_u, splits) => splits.map((i) => data.categories?.[i] ?? ""), splits: () => data.x, gap: 4, size: 60 }
          : {},
        { values: (_u, splits) => splits.map(formatValue), size: 70 },
      ],
      series: [
        { label: bars ? "group" : "time" },
        ...data.labels.map((label, i) => ({
          label,
          stroke: PALETTE[i % PALETTE.length],
          width: bars ? 0 : 1.5,
          fill: bars ? PALETTE[i % PALETTE.length] + "cc" : undefined,
          paths: bars ? uPlot.paths.bars?.({ size: [0.6, 80] }) : undefined,
          points: { show: !bars && data.x.length < 60 },
          value: (_u: uPlot, v: number | null) => (v == null ? "—" : formatValue(v)),
          spanGaps: false,
        })),
      ],
    };
    const plot = new uPlot(options, [data.x, ...data.series] as uPlot.AlignedData, el);
    (el as HTMLDivElement & { uplot?: uPlot }).uplot = plot;
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(el.clientWidth, 300), height }));
    resize.observe(el);
    return () => { resize.disconnect(); plot.destroy(); };
  }, [data, height]);
  return <div class="chart" ref={box} />;
}
