// The dashboard grid's geometry, apart from the page so that node --test checks it: 24 columns, rows of
// whole units; a panel placed, moved or resized is kept inside the grid and never overlaps another —
// whatever it lands on is pushed down below it — and a pointer's drag is snapped to whole cells.

export const COLUMNS = 24;
/** Tallest panel the editor makes (rows); the document itself sets no bound. */
export const MAX_ROWS = 48;

export interface GridPos { x: number; y: number; w: number; h: number }
export interface Placed { id: string; gridPosition: GridPos }

/** `p` made valid: whole numbers, 1 ≤ w ≤ 24, 1 ≤ h ≤ MAX_ROWS, 0 ≤ x ≤ 24 − w, y ≥ 0. */
export function clamp(p: GridPos): GridPos {
  const w = Math.min(COLUMNS, Math.max(1, Math.round(p.w)));
  const h = Math.min(MAX_ROWS, Math.max(1, Math.round(p.h)));
  const x = Math.min(COLUMNS - w, Math.max(0, Math.round(p.x)));
  const y = Math.max(0, Math.round(p.y));
  return { x, y, w, h };
}

/** Whether two rectangles share a cell. */
export function collides(a: GridPos, b: GridPos): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

/** The panels with `id` at `pos` (clamped), every other panel where it was unless that now overlaps a
 * panel already settled — the moved one first, then the others from the top — in which case it is
 * pushed down just below. The order of the list is kept; panels are copied, never changed. */
export function place<T extends Placed>(panels: T[], id: string, pos: GridPos): T[] {
  const moved = panels.find((p) => p.id === id);
  if (!moved) return panels;
  const at = new Map<string, GridPos>([[id, clamp(pos)]]);
  const settled: GridPos[] = [at.get(id) as GridPos];
  const others = panels.filter((p) => p.id !== id).sort((a, b) => a.gridPosition.y - b.gridPosition.y || a.gridPosition.x - b.gridPosition.x);
  for (const panel of others) {
    const p = { ...panel.gridPosition };
    for (let hit = settled.find((s) => collides(p, s)); hit; hit = settled.find((s) => collides(p, s))) p.y = hit.y + hit.h;
    settled.push(p);
    at.set(panel.id, p);
  }
  return panels.map((p) => {
    const g = at.get(p.id) as GridPos;
    const same = g.x === p.gridPosition.x && g.y === p.gridPosition.y && g.w === p.gridPosition.w && g.h === p.gridPosition.h;
    return same ? p : { ...p, gridPosition: g };
  });
}

/** The size of one grid step in pixels: a column plus its gap, a row plus its gap. */
export interface Cell { width: number; height: number }

/** Where a panel that started at `start` lands after the pointer moved (dx, dy) pixels: whole cells,
 * inside the grid. */
export function snapMove(start: GridPos, dx: number, dy: number, cell: Cell): GridPos {
  return clamp({ ...start, x: start.x + Math.round(dx / cell.width), y: start.y + Math.round(dy / cell.height) });
}

/** The size of a panel whose corner was dragged (dx, dy) pixels: whole cells, at least one, not past
 * the grid's right edge (its corner stays where it started). */
export function snapResize(start: GridPos, dx: number, dy: number, cell: Cell): GridPos {
  const w = Math.min(COLUMNS - start.x, Math.max(1, start.w + Math.round(dx / cell.width)));
  const h = Math.min(MAX_ROWS, Math.max(1, start.h + Math.round(dy / cell.height)));
  return { x: start.x, y: start.y, w, h };
}

/** The first row below every panel. */
export function bottom(panels: Placed[]): number {
  return panels.reduce((max, p) => Math.max(max, p.gridPosition.y + p.gridPosition.h), 0);
}

/** A new panel's place: the left edge, below the last row. */
export function below(panels: Placed[], w = 12, h = 4): GridPos {
  return clamp({ x: 0, y: bottom(panels), w, h });
}

/** An id no panel has: `panel_N`, N one more than the largest such number in use. */
export function nextPanelId(panels: Placed[]): string {
  const used = panels.map((p) => /^panel_(\d+)$/.exec(p.id)).filter((m) => m !== null).map((m) => Number((m as RegExpExecArray)[1]));
  const n = used.length === 0 ? panels.length + 1 : Math.max(...used) + 1;
  let id = `panel_${n}`;
  for (let k = n + 1; panels.some((p) => p.id === id); k++) id = `panel_${k}`;
  return id;
}
