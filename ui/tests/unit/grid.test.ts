// The dashboard grid's geometry (lib/grid.ts): clamping into the 24 columns, collisions, placing with
// push-down, snapping a drag to cells, and where a new panel goes.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { GridPos, Placed } from "../../src/lib/grid.ts";
import { below, bottom, clamp, collides, nextPanelId, place, snapMove, snapResize } from "../../src/lib/grid.ts";

const panel = (id: string, x: number, y: number, w: number, h: number): Placed => ({ id, gridPosition: { x, y, w, h } });
const positions = (panels: Placed[]) => Object.fromEntries(panels.map((p) => [p.id, p.gridPosition]));
const noOverlap = (panels: Placed[]) => {
  for (const a of panels) for (const b of panels) {
    if (a !== b) assert.ok(!collides(a.gridPosition, b.gridPosition), `${a.id} overlaps ${b.id}`);
  }
};

test("clamp keeps a position inside the 24 columns, whole and at least one cell", () => {
  assert.deepEqual(clamp({ x: 20, y: 0, w: 8, h: 4 }), { x: 16, y: 0, w: 8, h: 4 });
  assert.deepEqual(clamp({ x: -3, y: -2, w: 0, h: 0 }), { x: 0, y: 0, w: 1, h: 1 });
  assert.deepEqual(clamp({ x: 2.6, y: 1.4, w: 30, h: 99 }), { x: 0, y: 1, w: 24, h: 48 });
});

test("collides only when cells are shared, not when edges touch", () => {
  const a: GridPos = { x: 0, y: 0, w: 12, h: 4 };
  assert.equal(collides(a, { x: 12, y: 0, w: 12, h: 4 }), false);
  assert.equal(collides(a, { x: 0, y: 4, w: 24, h: 1 }), false);
  assert.equal(collides(a, { x: 11, y: 3, w: 2, h: 2 }), true);
});

test("placing a panel onto others pushes them down below it, keeping order and the untouched ones", () => {
  const panels = [panel("a", 0, 0, 12, 4), panel("b", 12, 0, 12, 4), panel("c", 0, 4, 24, 4), panel("d", 0, 8, 6, 2)];
  const placed = place(panels, "b", { x: 0, y: 0, w: 12, h: 4 });
  assert.deepEqual(placed.map((p) => p.id), ["a", "b", "c", "d"]);
  assert.deepEqual(positions(placed), {
    a: { x: 0, y: 4, w: 12, h: 4 },
    b: { x: 0, y: 0, w: 12, h: 4 },
    c: { x: 0, y: 8, w: 24, h: 4 },
    d: { x: 0, y: 12, w: 6, h: 2 },
  });
  noOverlap(placed);
  assert.equal(placed[3].gridPosition.y, 12);
});

test("placing into free space moves nothing else, and the same objects come back", () => {
  const panels = [panel("a", 0, 0, 12, 4), panel("b", 12, 0, 12, 4)];
  const placed = place(panels, "b", { x: 12, y: 6, w: 6, h: 3 });
  assert.equal(placed[0], panels[0]);
  assert.deepEqual(placed[1].gridPosition, { x: 12, y: 6, w: 6, h: 3 });
  assert.deepEqual(panels[1].gridPosition, { x: 12, y: 0, w: 12, h: 4 }, "the input was changed");
});

test("a position past the edge is clamped before it is placed", () => {
  const placed = place([panel("a", 0, 0, 6, 2)], "a", { x: 22, y: -1, w: 6, h: 2 });
  assert.deepEqual(placed[0].gridPosition, { x: 18, y: 0, w: 6, h: 2 });
});

test("resizing over a neighbour pushes it and what is below it down", () => {
  const panels = [panel("a", 0, 0, 12, 4), panel("b", 12, 0, 12, 4), panel("c", 12, 4, 12, 2)];
  const placed = place(panels, "a", { x: 0, y: 0, w: 16, h: 6 });
  assert.deepEqual(positions(placed), {
    a: { x: 0, y: 0, w: 16, h: 6 },
    b: { x: 12, y: 6, w: 12, h: 4 },
    c: { x: 12, y: 10, w: 12, h: 2 },
  });
  noOverlap(placed);
});

test("an unknown id changes nothing", () => {
  const panels = [panel("a", 0, 0, 6, 2)];
  assert.equal(place(panels, "zz", { x: 1, y: 1, w: 1, h: 1 }), panels);
});

test("a drag snaps to the nearest whole cell and stays in the grid", () => {
  const cell = { width: 50, height: 96 };
  const start = { x: 4, y: 2, w: 6, h: 3 };
  assert.deepEqual(snapMove(start, 124, -40, cell), { x: 6, y: 2, w: 6, h: 3 }); // 2.48 cols, −0.42 rows
  assert.deepEqual(snapMove(start, 126, -50, cell), { x: 7, y: 1, w: 6, h: 3 }); // 2.52 cols, −0.52 rows
  assert.deepEqual(snapMove(start, 5000, -5000, cell), { x: 18, y: 0, w: 6, h: 3 });
});

test("a resize snaps the corner to whole cells, at least one, not past the right edge", () => {
  const cell = { width: 50, height: 96 };
  const start = { x: 16, y: 2, w: 4, h: 3 };
  assert.deepEqual(snapResize(start, 76, 100, cell), { x: 16, y: 2, w: 6, h: 4 });
  assert.deepEqual(snapResize(start, 1000, 0, cell), { x: 16, y: 2, w: 8, h: 3 });
  assert.deepEqual(snapResize(start, -1000, -1000, cell), { x: 16, y: 2, w: 1, h: 1 });
});

test("a new panel goes on the left below the last row, with an id not in use", () => {
  const panels = [panel("panel_1", 0, 0, 12, 4), panel("panel_7", 12, 0, 12, 6), panel("latency", 0, 4, 6, 1)];
  assert.equal(bottom(panels), 6);
  assert.deepEqual(below(panels), { x: 0, y: 6, w: 12, h: 4 });
  assert.deepEqual(below([], 24, 5), { x: 0, y: 0, w: 24, h: 5 });
  assert.equal(nextPanelId(panels), "panel_8");
  assert.equal(nextPanelId([panel("cpu", 0, 0, 1, 1), panel("panel_2", 0, 1, 1, 1)]), "panel_3");
  assert.equal(nextPanelId([panel("cpu", 0, 0, 1, 1)]), "panel_2");
  assert.equal(nextPanelId([]), "panel_1");
});
