// One panel's editor: a form (title, type, the query with Explore's fields, display: unit, decimals,
// thresholds, legend) and the panel as JSON, either applied to the dashboard being edited. Nothing is
// saved here: the dashboard's Save sends the whole document.

import { useMemo, useState } from "preact/hooks";
import { ErrorBox } from "../../components/ErrorBox.tsx";
import { QueryFields, useDiscovery } from "../../components/QueryFields.tsx";
import type { Display, Panel, PanelType } from "../../lib/dashboard.ts";
import { PANEL_TYPES } from "../../lib/dashboard.ts";
import type { ExploreForm } from "../../lib/query.ts";
import { buildPanelQuery, formOf } from "../../lib/query.ts";

/** The display fields as typed ("" is unset). */
interface DisplayForm { unit: string; decimals: string; warning: string; critical: string; legendShow: boolean; legendPosition: "bottom" | "right" }

function displayForm(d: Display = {}): DisplayForm {
  const text = (v: number | undefined) => (v === undefined ? "" : String(v));
  return {
    unit: d.unit ?? "",
    decimals: text(d.decimals),
    warning: text(d.threshold?.warning),
    critical: text(d.threshold?.critical),
    legendShow: d.legend?.show ?? true,
    legendPosition: d.legend?.position ?? "bottom",
  };
}

/** The `display` object for the form: only what is set; a legend when the panel had one or it differs
 * from the default (shown, below). */
function displayOf(f: DisplayForm, had: Display | undefined): Display | undefined {
  const d: Display = {};
  if (f.unit.trim()) d.unit = f.unit.trim();
  if (f.decimals.trim()) d.decimals = Number(f.decimals);
  const threshold: NonNullable<Display["threshold"]> = {};
  if (f.warning.trim()) threshold.warning = Number(f.warning);
  if (f.critical.trim()) threshold.critical = Number(f.critical);
  if (Object.keys(threshold).length > 0) d.threshold = threshold;
  if (had?.legend || !f.legendShow || f.legendPosition !== "bottom") d.legend = { show: f.legendShow, position: f.legendPosition };
  return Object.keys(d).length > 0 ? d : undefined;
}

export function PanelEditor({ panel, isNew, onApply, onClose }: {
  panel: Panel;
  isNew: boolean;
  onApply: (panel: Panel) => void;
  onClose: () => void;
}) {
  const [title, setTitle] = useState(panel.title);
  const [type, setType] = useState<PanelType>(panel.type);
  const [form, setForm] = useState<ExploreForm>(() => formOf(panel.query));
  const [display, setDisplay] = useState<DisplayForm>(() => displayForm(panel.display));
  const { metrics, dimensions, error: loadError } = useDiscovery(form.metric);
  const update = (patch: Partial<ExploreForm>) => setForm((f) => ({ ...f, ...patch }));
  const setShown = (patch: Partial<DisplayForm>) => setDisplay((d) => ({ ...d, ...patch }));

  const edited = useMemo<Panel>(() => {
    const { display: _, ...rest } = panel;
    const shown = displayOf(display, panel.display);
    return { ...rest, title, type, query: buildPanelQuery(form), ...(shown ? { display: shown } : {}) };
  }, [panel, title, type, form, display]);
  // The JSON follows the form until it is edited by hand; "Apply JSON" then takes it as it is.
  const [json, setJson] = useState<string | null>(null);
  const [jsonError, setJsonError] = useState<unknown>(null);
  const applyJson = () => {
    setJsonError(null);
    try {
      const parsed = JSON.parse(json ?? "") as Panel;
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("a panel is a JSON object");
      onApply({ ...parsed, id: panel.id, gridPosition: parsed.gridPosition ?? panel.gridPosition });
    } catch (e) {
      setJsonError(new Error(`not a panel: ${(e as Error).message}`));
    }
  };

  const number = (name: keyof DisplayForm, label: string, attrs: Record<string, unknown> = {}) => (
    <label class="field narrow-field">
      <span>{label}</span>
      <input name={name} type="number" step="any" {...attrs} value={display[name] as string} onInput={(e) => setShown({ [name]: (e.target as HTMLInputElement).value })} />
    </label>
  );
  return (
    <div class="panel panel-editor" data-editing={panel.id}>
      <div class="row">
        <h2 class="grow-title">{isNew ? "New panel" : <>Edit panel <code>{panel.id}</code></>}</h2>
        <button type="button" onClick={onClose}>Cancel</button>
        <button type="button" class="primary" disabled={!title.trim() || !form.metric} onClick={() => onApply(edited)}>Apply</button>
      </div>
      <ErrorBox error={loadError} />
      <div class="row">
        <label class="field grow">
          <span>Title</span>
          <input name="panelTitle" value={title} onInput={(e) => setTitle((e.target as HTMLInputElement).value)} />
        </label>
        <label class="field">
          <span>Type</span>
          <select name="panelType" value={type} onChange={(e) => setType((e.target as HTMLSelectElement).value as PanelType)}>
            {PANEL_TYPES.map((t) => <option value={t}>{t}</option>)}
          </select>
        </label>
      </div>
      <fieldset>
        <legend>Query</legend>
        <QueryFields form={form} update={update} metrics={metrics} dimensions={dimensions} panel />
        <p class="muted hint">A filter value <code>$name</code> stands for the dashboard variable <code>name</code> (type it and press Enter).</p>
      </fieldset>
      <fieldset>
        <legend>Display</legend>
        <div class="row">
          <label class="field narrow-field">
            <span>Unit</span>
            <input name="unit" value={display.unit} placeholder="ms" onInput={(e) => setShown({ unit: (e.target as HTMLInputElement).value })} />
          </label>
          {number("decimals", "Decimals", { min: 0, max: 10, step: 1 })}
          {number("warning", "Warning ≥")}
          {number("critical", "Critical ≥")}
          <label class="chip-toggle">
            <input name="legendShow" type="checkbox" checked={display.legendShow} onChange={(e) => setShown({ legendShow: (e.target as HTMLInputElement).checked })} />
            legend
          </label>
          <label class="field">
            <span>Legend position</span>
            <select name="legendPosition" value={display.legendPosition} onChange={(e) => setShown({ legendPosition: (e.target as HTMLSelectElement).value as DisplayForm["legendPosition"] })}>
              <option value="bottom">bottom</option>
              <option value="right">right</option>
            </select>
          </label>
        </div>
      </fieldset>
      <details class="panel-json">
        <summary>Panel JSON</summary>
        <textarea name="panelJson" rows={14} spellcheck={false} value={json ?? JSON.stringify(edited, null, 2)} onInput={(e) => setJson((e.target as HTMLTextAreaElement).value)} />
        <ErrorBox error={jsonError} />
        <div class="row">
          <button type="button" disabled={json === null} onClick={applyJson}>Apply JSON</button>
          <button type="button" class="link" disabled={json === null} onClick={() => { setJson(null); setJsonError(null); }}>back to the form's</button>
        </div>
      </details>
    </div>
  );
}
