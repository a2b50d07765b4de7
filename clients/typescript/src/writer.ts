// Points on the wire and the batches that carry them to POST /api/v1/write.
//
// BatchWriter buffers points, already encoded, and sends a batch when it reaches `maxPoints` or
// `maxBytes` (and on flush()/close()). Each batch is gzip-compressed when it is worth it and the
// runtime has CompressionStream (Node 18+, current browsers; otherwise it goes uncompressed), and
// carries an Idempotency-Key of its own, kept across retries, so a batch retried after a lost answer is
// stored once. A batch the server finds too large (413 PAYLOAD_TOO_LARGE or 400 BATCH_TOO_LARGE: its
// limits are lower than the writer's) is split in two halves, each with a key derived from the
// batch's, and each half sent again.

import { LuminateError, PointsRejectedError } from "./errors.js";
import { errorOf, type Transport } from "./transport.js";
import type { Point, PointError, WriteResult } from "./types.js";

/** The server's default limits (batch_write.max_batch_size, batch_write.max_request_size_bytes). */
export const SERVER_MAX_POINTS = 10_000;
export const SERVER_MAX_BYTES = 10 * 1024 * 1024;
/** Bodies smaller than this are sent as they are: gzip saves nothing worth its time on them. */
export const GZIP_MIN_BYTES = 1024;
const ENVELOPE_HEAD = new TextEncoder().encode('{"metrics":[');
const ENVELOPE_TAIL = new TextEncoder().encode("]}");
const COMMA = 0x2c;
/** `{"metrics":[]}`: what a body holds besides its points and the commas between them. */
export const ENVELOPE_BYTES = ENVELOPE_HEAD.length + ENVELOPE_TAIL.length;

/** What a writer sent (and what tests check batching and compression with). */
export interface WriteStats {
  /** Batches the server answered (a split batch counts each half). */
  batches: number;
  /** Points in those batches. */
  points: number;
  /** Bytes of their JSON bodies. */
  jsonBytes: number;
  /** Bytes sent for them (after gzip, when used). */
  sentBytes: number;
  /** Batches sent gzip-compressed. */
  gzipped: number;
}

export function emptyStats(): WriteStats {
  return { batches: 0, points: 0, jsonBytes: 0, sentBytes: 0, gzipped: 0 };
}

const encoder = new TextEncoder();

/**
 * One point as the write route reads it. A value that is not a finite number throws a RangeError
 * here: JSON cannot carry NaN or infinities, and the server would refuse the point anyway.
 */
export function encodePoint(point: Point): Uint8Array {
  const { name, value, timestamp, dimensions } = point;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new RangeError(`point ${JSON.stringify(name)}: value must be a finite number, got ${String(value)}`);
  }
  const ts = timestamp === undefined ? Date.now() : timestamp instanceof Date ? timestamp.getTime() : timestamp;
  return encoder.encode(JSON.stringify({ name, timestamp: ts, value, dimensions: dimensions ?? {} }));
}

/** Whether this runtime can gzip a body (CompressionStream). */
export function canGzip(): boolean {
  return typeof CompressionStream === "function";
}

async function gzip(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function body(points: Uint8Array[]): Uint8Array {
  const length = ENVELOPE_BYTES + points.reduce((n, p) => n + p.length, 0) + Math.max(0, points.length - 1);
  const out = new Uint8Array(length);
  out.set(ENVELOPE_HEAD, 0);
  let at = ENVELOPE_HEAD.length;
  points.forEach((p, i) => {
    if (i > 0) out[at++] = COMMA;
    out.set(p, at);
    at += p.length;
  });
  out.set(ENVELOPE_TAIL, at);
  return out;
}

/** A new idempotency key: random, 32 hex digits. */
export function newKey(): string {
  const uuid = globalThis.crypto?.randomUUID?.();
  if (uuid) return uuid.replaceAll("-", "");
  return Array.from({ length: 32 }, () => Math.floor(Math.random() * 16).toString(16)).join("");
}

/**
 * Sends already encoded points as one batch under `key` (a new one when absent). Resolves to the
 * answer of a 200 or 207; throws PointsRejectedError when every point was refused and LuminateError
 * for any other refusal, after the transport's retries. A batch over the server's limits is split.
 */
export async function sendBatch(
  transport: Transport,
  points: Uint8Array[],
  options: { key?: string; gzip?: boolean; stats?: WriteStats } = {},
): Promise<WriteResult> {
  const key = options.key ?? newKey();
  const useGzip = options.gzip ?? true;
  const json = body(points);
  const headers: Record<string, string> = { "Content-Type": "application/json", "Idempotency-Key": key };
  let payload = json;
  if (useGzip && json.length >= GZIP_MIN_BYTES && canGzip()) {
    payload = await gzip(json);
    headers["Content-Encoding"] = "gzip";
  }
  const split = async () => {
    const half = Math.floor(points.length / 2);
    const first = await sendBatch(transport, points.slice(0, half), { ...options, key: `${key}.0` });
    return add(first, await sendBatch(transport, points.slice(half), { ...options, key: `${key}.1` }));
  };
  let answer;
  try {
    answer = await transport.request("POST", "/api/v1/write", { body: payload as BodyInit, headers, answers: [400] });
  } catch (e) {
    if (e instanceof LuminateError && e.code === "PAYLOAD_TOO_LARGE" && points.length > 1) return split();
    throw e;
  }
  const reply = answer.body as Partial<WriteResult> & { error?: unknown };
  // A 400 in the write's own format means every point was invalid; any other 400 is an error.
  const allRejected = reply !== null && typeof reply === "object" && Array.isArray(reply.errors) && reply.error === undefined;
  if (answer.status === 400 && !allRejected) {
    const error = errorOf(answer);
    if (error.code === "BATCH_TOO_LARGE" && points.length > 1) return split();
    throw error;
  }
  const stats = options.stats;
  if (stats) {
    stats.batches += 1;
    stats.points += points.length;
    stats.jsonBytes += json.length;
    stats.sentBytes += payload.length;
    stats.gzipped += payload === json ? 0 : 1;
  }
  if (answer.status === 400) throw new PointsRejectedError(reply.errors as PointError[]);
  return { accepted: Number(reply.accepted), rejected: Number(reply.rejected), errors: reply.errors ?? [] };
}

function add(a: WriteResult, b: WriteResult): WriteResult {
  return { accepted: a.accepted + b.accepted, rejected: a.rejected + b.rejected, errors: [...a.errors, ...b.errors] };
}

export interface WriterOptions {
  /** Points per batch, 1 to 10 000. Default 5000. */
  maxPoints?: number;
  /** The largest JSON body of a batch, in bytes (up to 10 MiB). Default 1 MiB. */
  maxBytes?: number;
  /** Compress batches with gzip where the runtime can. Default true. */
  gzip?: boolean;
}

/**
 * Buffers points and writes them in batches:
 *
 *     const writer = client.writer({ maxPoints: 5000 });
 *     await writer.add({ name: "api_latency", value: 12.5, dimensions: { customer_id: "cust_1" } });
 *     await writer.close();
 *
 * `add` resolves at once unless it sent a batch; await it (one batch is sent at a time, in order).
 */
export class BatchWriter {
  /** The server's answers, summed over every batch sent. */
  readonly result: WriteResult = { accepted: 0, rejected: 0, errors: [] };
  /** Batches and bytes sent. */
  readonly stats: WriteStats = emptyStats();
  readonly maxPoints: number;
  readonly maxBytes: number;
  private readonly gzip: boolean;
  private buffer: Uint8Array[] = [];
  /** The size of the body the buffered points would make: the envelope, the points, the commas. */
  private bodyBytes = ENVELOPE_BYTES;
  /** The batch being sent, so that the next waits for it: batches leave in the order points came. */
  private sending: Promise<void> = Promise.resolve();

  constructor(private readonly transport: Transport, options: WriterOptions = {}) {
    this.maxPoints = options.maxPoints ?? 5000;
    this.maxBytes = options.maxBytes ?? 1024 * 1024;
    this.gzip = options.gzip ?? true;
    if (!Number.isInteger(this.maxPoints) || this.maxPoints < 1 || this.maxPoints > SERVER_MAX_POINTS) {
      throw new RangeError(`maxPoints must be 1-${SERVER_MAX_POINTS}, got ${this.maxPoints}`);
    }
    if (!Number.isInteger(this.maxBytes) || this.maxBytes < 1 || this.maxBytes > SERVER_MAX_BYTES) {
      throw new RangeError(`maxBytes must be 1-${SERVER_MAX_BYTES}, got ${this.maxBytes}`);
    }
  }

  /** Buffers one point, sending the buffer first when the point would take its body past `maxBytes`,
   * and after when it holds `maxPoints`. A point larger than `maxBytes` by itself goes alone. */
  async add(point: Point): Promise<void> {
    const encoded = encodePoint(point);
    if (this.buffer.length > 0 && this.bodyBytes + 1 + encoded.length > this.maxBytes) await this.flush();
    this.bodyBytes += encoded.length + (this.buffer.length > 0 ? 1 : 0);
    this.buffer.push(encoded);
    if (this.buffer.length >= this.maxPoints) await this.flush();
  }

  /** Sends what is buffered as one batch (nothing when empty). On an error the batch leaves the buffer
   * and the error is thrown: the server refused it, or retries ran out without an answer. */
  async flush(): Promise<void> {
    const points = this.buffer;
    this.buffer = [];
    this.bodyBytes = ENVELOPE_BYTES;
    const previous = this.sending;
    const sent = (async () => {
      await previous.catch(() => undefined); // its caller saw its error
      if (points.length === 0) return;
      const result = await sendBatch(this.transport, points, { gzip: this.gzip, stats: this.stats });
      this.result.accepted += result.accepted;
      this.result.rejected += result.rejected;
      this.result.errors.push(...result.errors);
    })();
    this.sending = sent;
    await sent;
  }

  /** Sends the last points. */
  close(): Promise<void> {
    return this.flush();
  }
}
