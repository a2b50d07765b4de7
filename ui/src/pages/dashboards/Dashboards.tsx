// Dashboards: the tenant's dashboards by tag, import of a file, and one dashboard viewed on its
// 24-column grid — variables as selectors, a time range and a refresh interval, every panel running its
// query as the model resolves it (lib/dashboard.ts) and drawn by its type. Export downloads the file.

import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { client } from "../../api/client.ts";
import type { DashboardSummary, QueryAnswer } from "../../api/types.ts";
import { Chart, type ChartLook } from "../../components/Chart.tsx";
import { ErrorBox } from "../../components/ErrorBox.tsx";
import { type Choices, type Dashboard, type Panel, type Variable, formatNumber, gridArea, level, panelQuery, parseDuration, selected } from "../../lib/dashboard.ts";
import { COLUMNS, below, bottom, nextPanelId, place, snapMove, snapResize } from "../../lib/grid.ts";
import { measureOnce } from "../../lib/timing.ts";
import { PanelEditor } from "./PanelEditor.tsx";
import { type ChartData, capSeries, chartData, formatTime, hasRows, RELATIVE_RANGES, tableRows } from "../../lib/query.ts";
import { Link, navigate } from "../../lib/route.tsx";

export function Dashboards({ params }: { params: URLSearchParams }) {
  const id = params.get("id");
  return id ? <DashboardView id={id} /> : <DashboardList tag={params.get("tag") ?? ""} />;
}

function DashboardList({ tag }: { tag: string }) {
  const [all, setAll] = useState<DashboardSummary[] | null>(null);
  const [shown, setShown] = useState<DashboardSummary[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => { client.dashboards().then(setAll, setError); }, []);
  useEffect(() => { setShown(null); client.dashboards(tag || undefined).then(setShown, setError); }, [tag]);
  const tags = useMemo(() => [...new Set((all ?? []).flatMap((d) => d.tags))].sort(), [all]);
  return (
    <>
      <div class="panel">
        <div class="row">
          <h2 class="grow-title">Dashboards</h2>
          <ImportButton />
        </div>
        <div class="row tags">
          <span class="label">Tag</span>
          <Link href="/ui/dashboards" class={tag === "" ? "tag active" : "tag"}>all</Link>
          {tags.map((t) => <Link href={`/ui/dashboards?tag=${encodeURIComponent(t)}`} class={t === tag ? "tag active" : "tag"}>{t}</Link>)}
        </div>
        <ErrorBox error={error} />
        {shown === null ? <p class="muted">Loading…</p> : shown.length === 0 ? (
          <p class="muted">No dashboards{tag ? ` tagged “${tag}”` : ""}. Import a JSON file (the design's <code>{`{"dashboard": {...}}`}</code>), e.g. one of <code>deploy/dashboards/</code>.</p>
        ) : (
          <table class="results dashboards">
            <thead><tr><th>title</th><th>id</th><th>tags</th><th>version</th></tr></thead>
            <tbody>
              {shown.map((d) => (
                <tr>
                  <td><Link href={`/ui/dashboards?id=${encodeURIComponent(d.id)}`}>{d.title}</Link></td>
                  <td><code>{d.id}</code></td>
                  <td>{d.tags.map((t) => <Link href={`/ui/dashboards?tag=${encodeURIComponent(t)}`} class="tag">{t}</Link>)}</td>
                  <td class="num">{d.version}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </>
  );
}

/** Imports a dashboard file (POST) and opens it; a refusal (invalid document, id taken) in the server's words. */
function ImportButton() {
  const [error, setError] = useState<unknown>(null);
  const input = useRef<HTMLInputElement>(null);
  const load = async (file: File) => {
    setError(null);
    try {
      let document: unknown;
      try { document = JSON.parse(await file.text()); } catch (e) { throw new Error(`${file.name} is not JSON: ${(e as Error).message}`); }
      const saved = await client.importDashboard(document);
      navigate(`/ui/dashboards?id=${encodeURIComponent(saved.dashboard.id)}`);
    } catch (e) {
      setError(e);
    } finally {
      if (input.current) input.current.value = "";
    }
  };
  return (
    <div class="import">
      <label class="button">Import JSON file…
        <input ref={input} type="file" name="import" accept="application/json,.json" hidden onChange={(e) => { const f = (e.target as HTMLInputElement).files?.[0]; if (f) void load(f); }} />
      </label>
      <ErrorBox error={error} />
    </div>
  );
}

/** Offers `text` as a file download. */
function download(name: string, text: string) {
  const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

const REFRESH_CHOICES = ["", "10s", "30s", "1m", "5m", "15m"];

function DashboardView({ id }: { id: string }) {
  const [dashboard, setDashboard] = useState<Dashboard | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [choices, setChoices] = useState<Choices>({});
  /** "" keeps the dashboard's range. */
  const [range, setRange] = useState("");
  const [refresh, setRefresh] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const [editing, setEditing] = useState(false);
  /** The dashboard being edited with forms and drags, until saved or discarded. */
  const [draft, setDraft] = useState<Dashboard | null>(null);
  /** The panel whose editor is open (a new one is not in the draft until applied). */
  const [editor, setEditor] = useState<{ panel: Panel; isNew: boolean } | null>(null);
  const [saveError, setSaveError] = useState<unknown>(null);
  const [saving, setSaving] = useState(false);
  const grid = useRef<HTMLDivElement>(null);
  const drawn = useDrawnTiming(dashboard);
  // Asked for in a layout effect (right after the first render, in the same task) rather than an
  // effect (after the next frame): a frame sooner, and so are the panels' queries, which leave as soon
  // as the document arrives (`sendEarly`).
  useLayoutEffect(() => {
    client.dashboard(id).then((f) => { sendEarly(f.dashboard); setDashboard(f.dashboard); }, setError);
    return dropEarly;
  }, [id]);
  // A parent's layout effects run after its children's: every panel has taken its early query by now,
  // and one that no panel took (its query changed meanwhile) is cancelled, not left running.
  useLayoutEffect(() => { if (dashboard) dropEarly(); }, [dashboard?.id]);
  const every = refresh ?? dashboard?.refreshInterval ?? "";
  useEffect(() => {
    const ms = parseDuration(every);
    if (!ms) return;
    const timer = setInterval(() => setTick((t) => t + 1), ms);
    return () => clearInterval(timer);
  }, [every]);
  const exportFile = async () => {
    try {
      const file = await client.dashboard(id);
      download(`${id}.json`, `${JSON.stringify(file, null, 2)}\n`);
    } catch (e) { setError(e); }
  };
  if (error) return <><p><Link href="/ui/dashboards">← Dashboards</Link></p><ErrorBox error={error} /></>;
  if (!dashboard) return <p class="muted">Loading…</p>;
  const shown = draft ?? dashboard;
  const dashboardRange = (dashboard.timeRange?.relative as string | undefined) ?? "custom";
  const timeRange = range ? { relative: range } : undefined;
  // While editing, a few empty rows below the last panel to drag into.
  const rows = Math.max(1, bottom(shown.panels)) + (draft ? 4 : 0);

  const setPanels = (panels: Panel[]) => setDraft((d) => (d ? { ...d, panels } : d));
  const apply = (panel: Panel) => {
    if (!draft) return;
    const panels = editor?.isNew ? [...draft.panels, panel] : draft.panels.map((p) => (p.id === panel.id ? panel : p));
    // A size changed in the JSON may now overlap a neighbour: place it again.
    setPanels(place(panels, panel.id, panel.gridPosition));
    setEditor(null);
  };
  const addPanel = () => {
    if (!draft) return;
    const query = { queryType: "aggregate", metricName: "", aggregation: "avg" };
    setEditor({ isNew: true, panel: { id: nextPanelId(draft.panels), title: "New panel", type: "timeseries", gridPosition: below(draft.panels, 12, 4), query } });
  };
  const save = async () => {
    if (!draft) return;
    setSaving(true);
    setSaveError(null);
    try {
      const saved = (await client.saveDashboard(draft.id, { dashboard: draft })).dashboard;
      setDashboard(saved);
      setDraft(null);
      setEditor(null);
    } catch (e) {
      setSaveError(e);
    } finally {
      setSaving(false);
    }
  };
  /** A drag on a panel's title (move) or its corner (resize): snapped to cells, placed with push-down,
   * always from the layout the drag started with, so that a panel pushed aside comes back. */
  const startDrag = (panel: Panel, mode: "move" | "resize", e: PointerEvent) => {
    if (!draft || !grid.current || e.button !== 0) return;
    if ((e.target as HTMLElement).closest("button")) return;
    e.preventDefault();
    const box = grid.current.getBoundingClientRect();
    const cell = { width: (box.width + GAP_PX) / COLUMNS, height: ROW_PX + GAP_PX };
    const from = draft.panels;
    const start = panel.gridPosition;
    const [x0, y0] = [e.clientX, e.clientY];
    const move = (ev: PointerEvent) => {
      const [dx, dy] = [ev.clientX - x0, ev.clientY - y0];
      const to = mode === "move" ? snapMove(start, dx, dy, cell) : snapResize(start, dx, dy, cell);
      setPanels(place(from, panel.id, to));
    };
    const up = () => { removeEventListener("pointermove", move); removeEventListener("pointerup", up); };
    addEventListener("pointermove", move);
    addEventListener("pointerup", up);
  };
  return (
    <>
      <div class="panel dash-head">
        <div class="row">
          <div class="grow-title">
            <Link href="/ui/dashboards">Dashboards</Link> / <strong class="dash-title">{dashboard.title}</strong>
            {(dashboard.tags ?? []).map((t) => <Link href={`/ui/dashboards?tag=${encodeURIComponent(t)}`} class="tag">{t}</Link>)}
            <span class="muted"> · version {dashboard.version}</span>
            {draft && <span class="editing-badge">editing</span>}
          </div>
          {draft ? (
            <>
              <button type="button" onClick={addPanel}>Add panel</button>
              <button type="button" onClick={() => { setDraft(null); setEditor(null); setSaveError(null); }}>Discard</button>
              <button type="button" class="primary" disabled={saving} onClick={save}>Save</button>
            </>
          ) : (
            <>
              <button type="button" class="primary" onClick={() => { setDraft(dashboard); setEditing(false); }}>Edit</button>
              <button type="button" onClick={() => setEditing((e) => !e)}>{editing ? "Close editor" : "Edit JSON"}</button>
              <button type="button" onClick={exportFile}>Export JSON</button>
            </>
          )}
        </div>
        {draft && <p class="muted hint">Drag a panel by its title to move it, by its corner to resize it; <em>Edit</em> opens its form and JSON. Nothing is stored until <em>Save</em> (version {dashboard.version}).</p>}
        <ErrorBox error={saveError} />
        <div class="row">
          {(dashboard.variables ?? []).map((v) => (
            <VariablePicker variable={v} choices={choices} onChange={(value) => setChoices((c) => ({ ...c, [v.name]: value }))} />
          ))}
          <label class="field">
            <span>Time range</span>
            <select name="range" value={range} onChange={(e) => setRange((e.target as HTMLSelectElement).value)}>
              <option value="">dashboard's ({dashboardRange})</option>
              {RELATIVE_RANGES.map((r) => <option value={r}>last {r}</option>)}
            </select>
          </label>
          <label class="field">
            <span>Refresh</span>
            <select name="refresh" value={every} onChange={(e) => setRefresh((e.target as HTMLSelectElement).value)}>
              {[...new Set([...REFRESH_CHOICES, every])].map((r) => <option value={r}>{r ? `every ${r}` : "off"}</option>)}
            </select>
          </label>
          <button type="button" onClick={() => setTick((t) => t + 1)}>Refresh now</button>
        </div>
      </div>
      {editing && <JsonEditor dashboard={dashboard} onSaved={(saved) => { setDashboard(saved); setEditing(false); }} />}
      {editor && <PanelEditor key={editor.panel.id} panel={editor.panel} isNew={editor.isNew} onApply={apply} onClose={() => setEditor(null)} />}
      <div ref={grid} class={`dash-grid${draft ? " editing" : ""}`} style={{ gridTemplateRows: `repeat(${rows}, var(--row))` }}>
        {shown.panels.map((p) => (
          <PanelView
            key={p.id}
            panel={p}
            query={panelQuery(shown, p, choices, timeRange)}
            tick={tick}
            onDrawn={drawn}
            edit={draft ? {
              onDrag: (mode, e) => startDrag(p, mode, e),
              onEdit: () => setEditor({ panel: p, isNew: false }),
              onRemove: () => { setPanels(draft.panels.filter((q) => q.id !== p.id)); if (editor?.panel.id === p.id) setEditor(null); },
            } : undefined}
          />
        ))}
      </div>
    </>
  );
}

/** Marks `luminate:dashboard-drawn` and measures `luminate:dashboard` (from navigation) once every panel
 * of a freshly opened dashboard has drawn its first answer or refusal; the speed benchmark reads it. */
function useDrawnTiming(dashboard: Dashboard | null) {
  const pending = useRef<Set<string> | null>(null);
  const counted = useRef<string | undefined>(undefined);
  // Set while rendering, before any panel's effect: an effect of this component runs after its
  // panels' (which send their queries), and a plain one waits for the next frame, so a quick answer
  // could be drawn first and the dashboard would never count as drawn.
  if (counted.current !== dashboard?.id) {
    counted.current = dashboard?.id;
    pending.current = dashboard ? new Set(dashboard.panels.map((p) => p.id)) : null;
  }
  return (panelId: string) => {
    const left = pending.current;
    if (!left || !left.delete(panelId) || left.size > 0) return;
    pending.current = null;
    performance.clearMarks("luminate:dashboard-drawn");
    performance.mark("luminate:dashboard-drawn");
    measureOnce("luminate:dashboard", { start: 0, end: "luminate:dashboard-drawn" });
  };
}

/** The whole document as JSON (panels, their queries, display and grid positions, variables), saved
 * with `PUT` naming the version it was read at: a save over a newer version is refused with 409, shown
 * as such. */
function JsonEditor({ dashboard, onSaved }: { dashboard: Dashboard; onSaved: (saved: Dashboard) => void }) {
  const [text, setText] = useState(() => JSON.stringify(dashboard, null, 2));
  const [error, setError] = useState<unknown>(null);
  const [saving, setSaving] = useState(false);
  const save = async () => {
    setError(null);
    let document: unknown;
    try { document = JSON.parse(text); } catch (e) { setError(new Error(`not JSON: ${(e as Error).message}`)); return; }
    setSaving(true);
    try { onSaved((await client.saveDashboard(dashboard.id, document)).dashboard); } catch (e) { setError(e); } finally { setSaving(false); }
  };
  return (
    <div class="panel editor">
      <p class="muted">The dashboard as JSON (read at version {dashboard.version}): edit panels, their <code>gridPosition</code>, queries and display, or add one, then save.</p>
      <textarea name="dashboardJson" rows={20} spellcheck={false} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
      <ErrorBox error={error} />
      <div class="row"><button type="button" class="primary" disabled={saving} onClick={save}>Save</button></div>
    </div>
  );
}

/** A variable's selector: its choices from `options` or its `listDimensionValues` query; several may be
 * ticked when `multi`. Nothing chosen means all values (the filter is dropped). */
function VariablePicker({ variable, choices, onChange }: { variable: Variable; choices: Choices; onChange: (value: string | string[]) => void }) {
  const [values, setValues] = useState<string[]>(variable.options ?? []);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (variable.type !== "query" || !variable.query) return;
    client.variableValues(variable.query).then(setValues, setError);
  }, [variable]);
  const chosen = selected(variable, choices);
  const label = variable.label ?? variable.name;
  // The multi-select's list closes on a click elsewhere, as a select would.
  const details = useRef<HTMLDetailsElement>(null);
  useEffect(() => {
    const close = (e: MouseEvent) => { if (details.current && !details.current.contains(e.target as Node)) details.current.open = false; };
    addEventListener("mousedown", close);
    return () => removeEventListener("mousedown", close);
  }, []);
  if (!variable.multi) {
    return (
      <label class="field variable">
        <span>{label}</span>
        <select name={`var-${variable.name}`} value={chosen[0] ?? ""} onChange={(e) => { const v = (e.target as HTMLSelectElement).value; onChange(v === "" ? [] : v); }}>
          <option value="">all</option>
          {values.map((v) => <option value={v}>{v}</option>)}
        </select>
        {error != null && <span class="error-inline">{(error as Error).message}</span>}
      </label>
    );
  }
  const toggle = (v: string) => onChange(chosen.includes(v) ? chosen.filter((c) => c !== v) : [...chosen, v]);
  return (
    <div class="field variable">
      <span>{label}</span>
      <details class="multi" data-variable={variable.name} ref={details}>
        <summary>{chosen.length === 0 ? "all" : chosen.join(", ")}</summary>
        <div class="multi-options">
          {values.map((v) => (
            <label><input type="checkbox" value={v} checked={chosen.includes(v)} onChange={() => toggle(v)} /> {v}</label>
          ))}
          {values.length === 0 && <span class="muted">no values</span>}
          <button type="button" class="link" onClick={() => onChange([])}>all (clear)</button>
        </div>
      </details>
      {error != null && <span class="error-inline">{(error as Error).message}</span>}
    </div>
  );
}

/** A panel query sent before the panels are rendered, and when. */
interface Early { answer: Promise<QueryAnswer>; abort: AbortController; started: number }

/** The first queries of a dashboard just opened, by their text: sent when its document arrives, since
 * rendering twelve panels took 40 ms in a browser just started (10 ms later on). Each panel takes its
 * own on its first fetch; `panelQuery` is pure, so a panel's first query is known before it renders
 * (no variable chosen yet, the dashboard's time range). */
const early = new Map<string, Early>();

function sendEarly(dashboard: Dashboard) {
  dropEarly();
  for (const panel of dashboard.panels) {
    const text = JSON.stringify(panelQuery(dashboard, panel, {}, undefined));
    if (early.has(text)) continue;
    const abort = new AbortController();
    const answer = client.rawQuery<QueryAnswer>(JSON.parse(text), abort.signal);
    // A query no panel takes is cancelled: its rejection is expected, not an error of the page.
    answer.catch(() => {});
    early.set(text, { answer, abort, started: performance.now() });
  }
}

/** Cancels the early queries no panel took (the dashboard was left, or another opened). */
function dropEarly() {
  for (const { abort } of early.values()) abort.abort();
  early.clear();
}

/** The early query of this text, taken once. */
function takeEarly(text: string): Early | undefined {
  const taken = early.get(text);
  early.delete(text);
  return taken;
}

/** Pixel height of one grid row (--row in styles.css) and the gap between rows. */
const ROW_PX = 84;
const GAP_PX = 12;

interface PanelEdit {
  onDrag: (mode: "move" | "resize", e: PointerEvent) => void;
  onEdit: () => void;
  onRemove: () => void;
}

function PanelView({ panel, query, tick, onDrawn, edit }: { panel: Panel; query: Record<string, unknown>; tick: number; onDrawn: (id: string) => void; edit?: PanelEdit }) {
  const text = JSON.stringify(query);
  // The last answer stays on screen while the next is fetched; `for` says which query it answered.
  const [shown, setShown] = useState<{ for: string; answer: QueryAnswer | null; error: unknown } | null>(null);
  const [loading, setLoading] = useState(true);
  /** When the last answer arrived: `luminate:panel-draw:<id>` measures from there to its drawing. */
  const answeredAt = useRef(0);
  // Sent from a layout effect, as soon as the panel is in the page, not after the next frame.
  useLayoutEffect(() => {
    const sent = tick === 0 ? takeEarly(text) : undefined;
    const abort = sent?.abort ?? new AbortController();
    setLoading(true);
    const started = sent?.started ?? performance.now();
    (sent?.answer ?? client.rawQuery<QueryAnswer>(JSON.parse(text), abort.signal)).then(
      (answer) => {
        answeredAt.current = performance.now();
        measureOnce(`luminate:panel-query:${panel.id}`, { start: started, end: answeredAt.current, detail: { serverMs: answer.executionTimeMs } });
        setShown({ for: text, answer, error: null });
        setLoading(false);
      },
      (error) => {
        if ((error as Error).name === "AbortError") return;
        answeredAt.current = performance.now();
        setShown({ for: text, answer: null, error });
        setLoading(false);
      },
    );
    return () => abort.abort();
  }, [text, tick]);
  const height = panel.gridPosition.h * ROW_PX + (panel.gridPosition.h - 1) * GAP_PX;
  const state = loading || shown?.for !== text ? "loading" : shown.error ? "error" : "drawn";
  // A refusal or a non-chart body is drawn once it is in the page; a chart says so itself (uPlot draws later).
  const chart = shown?.answer && (panel.type === "timeseries" || panel.type === "bar") && hasRows(shown.answer);
  const drawn = () => {
    measureOnce(`luminate:panel-draw:${panel.id}`, { start: answeredAt.current });
    onDrawn(panel.id);
  };
  // In the page from here on (a layout effect runs right after the DOM is changed).
  useLayoutEffect(() => { if (state !== "loading" && !chart) drawn(); }, [state, chart]);
  return (
    <section class={`panel dash-panel type-${panel.type}`} style={{ gridArea: gridArea(panel.gridPosition) }} data-panel-id={panel.id} data-query={text} data-state={state}>
      <h3 title={text} onPointerDown={edit ? (e) => edit.onDrag("move", e) : undefined}>
        <span class="panel-title">{panel.title}</span>
        {shown?.answer?.truncated && <span class="truncated">truncated</span>}
        {edit && (
          <span class="panel-actions">
            <button type="button" onClick={edit.onEdit}>Edit</button>
            <button type="button" onClick={edit.onRemove}>Remove</button>
          </span>
        )}
      </h3>
      {shown === null ? <p class="muted">Loading…</p> : shown.error ? <ErrorBox error={shown.error} /> : shown.answer && <PanelBody panel={panel} answer={shown.answer} height={height} onDrawn={drawn} />}
      {edit && <div class="resize-handle" title="drag to resize" onPointerDown={(e) => edit.onDrag("resize", e)} />}
    </section>
  );
}

function PanelBody({ panel, answer, height, onDrawn }: { panel: Panel; answer: QueryAnswer; height: number; onDrawn: () => void }) {
  const display = panel.display ?? {};
  const charted = panel.type === "timeseries" || panel.type === "bar";
  // Built only for the type that shows them; not again when the panel is only moved.
  const data = useMemo(() => (charted ? capSeries(chartData(answer)) : null), [answer, charted]);
  const rows = useMemo(() => (panel.type === "table" ? tableRows(answer) : []), [answer, panel.type]);
  const look = useMemo<ChartLook>(() => ({
    legend: panel.type === "bar" ? { show: false } : { show: display.legend?.show ?? true, position: display.legend?.position ?? "bottom" },
    format: (v: number) => formatNumber(v, display),
    threshold: display.threshold,
  }), [panel.type, panel.display]);
  if (!hasRows(answer)) return <p class="muted">No data in this range.</p>;
  switch (panel.type) {
    case "timeseries":
    case "bar": {
      // Room for the title and, below the plot, a legend of a line or two.
      // About one legend entry per 4 grid columns fits a line (the time entry is one too).
      const perLine = Math.max(1, Math.floor(panel.gridPosition.w / 4));
      const lines = data as ChartData;
      const legendRows = look.legend?.show && look.legend.position !== "right" ? Math.min(4, Math.ceil((lines.labels.length + 1) / perLine)) : 0;
      const plotHeight = Math.max(80, height - 52 - legendRows * 24);
      return <Chart data={lines} height={plotHeight} look={look} onDrawn={onDrawn} name={panel.id} />;
    }
    case "gauge":
      return <Gauge panel={panel} answer={answer} />;
    case "table": {
      const timed = rows.some((r) => r.timestamp !== null);
      return (
        <div class="table-box">
          <table class="results">
            <thead><tr><th>series / group</th>{timed && <th>time (UTC)</th>}<th>value</th>{rows[0].count !== undefined && <th>count</th>}</tr></thead>
            <tbody>
              {rows.slice(0, 500).map((r) => (
                <tr><td>{r.series}</td>{timed && <td>{r.timestamp === null ? "" : formatTime(r.timestamp)}</td>}<td class={`num level-${level(r.value, display.threshold)}`} data-value={String(r.value)}>{formatNumber(r.value, display)}</td>{r.count !== undefined && <td class="num">{r.count}</td>}</tr>
              ))}
            </tbody>
          </table>
        </div>
      );
    }
  }
}

/** The gauge's values: one per group, the group's value (or, bucketed, its latest bucket). */
function gaugeValues(answer: QueryAnswer): { label: string; value: number }[] {
  const data = chartData(answer);
  if (data.kind === "bars") return data.series[0].map((v, i) => ({ label: data.categories?.[i] ?? "", value: v as number }));
  return data.labels.map((label, i) => {
    const column = data.series[i];
    for (let j = column.length - 1; j >= 0; j--) if (column[j] !== null) return { label, value: column[j] as number };
    return { label, value: NaN };
  });
}

function Gauge({ panel, answer }: { panel: Panel; answer: QueryAnswer }) {
  const display = panel.display ?? {};
  const values = gaugeValues(answer);
  const [first, ...rest] = values;
  return (
    <div class="gauge">
      <div class={`gauge-value level-${level(first.value, display.threshold)}`} data-value={String(first.value)}>{formatNumber(first.value, display)}</div>
      <div class="muted">{first.label}</div>
      {display.threshold && (
        <div class="gauge-thresholds muted">
          {display.threshold.warning !== undefined && <span class="level-warning">warning ≥ {formatNumber(display.threshold.warning, display)}</span>}
          {display.threshold.critical !== undefined && <span class="level-critical">critical ≥ {formatNumber(display.threshold.critical, display)}</span>}
        </div>
      )}
      {rest.length > 0 && (
        <ul class="gauge-rest">{rest.slice(0, 8).map((v) => <li><span>{v.label}</span> <span class={`level-${level(v.value, display.threshold)}`} data-value={String(v.value)}>{formatNumber(v.value, display)}</span></li>)}</ul>
      )}
    </div>
  );
}
