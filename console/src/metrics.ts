// The functions' own measurements, as firekit.metrics flushes them (PLAN interface 3):
// `_metrics/5m-YYYYMMDDTHHMM` (5-minute windows) and `_metrics/1h-YYYYMMDDTHH` (hours),
// UTC, each with `bounds` (bucket upper bounds in ms, ascending, the last null: no bound)
// and per function `count`, `ok`, `outcomes.<OUTCOME>` and `latency.b<i>` (requests
// whose latency fell in bucket i). Summing windows sums their counters; percentiles come
// from the summed buckets, read as firekit.metrics.percentile reads them.

/** One function's counters in one window document. */
export interface FunctionWindow {
  count?: number;
  ok?: number;
  outcomes?: Record<string, number>;
  latency?: Record<string, number>;
}

export interface MetricsWindow {
  window: "5m" | "1h";
  bounds: (number | null)[];
  functions?: Record<string, FunctionWindow>;
}

/** Counters of one function over a span of windows. */
export interface Totals {
  count: number;
  ok: number;
  outcomes: Record<string, number>;
  /** Requests per bucket, keyed by the bucket's upper bound (null: above every bound). */
  buckets: Map<number | null, number>;
  /** Every bucket's upper bound, empty buckets' too (a bucket starts at the one before). */
  bounds: Set<number | null>;
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

function hourId(at: Date): string {
  return `${at.getUTCFullYear()}${pad(at.getUTCMonth() + 1)}${pad(at.getUTCDate())}T${pad(at.getUTCHours())}`;
}

/** The ids of the 12 five-minute windows of the last hour, the current one first. */
export function lastHourIds(now: Date): string[] {
  const step = 5 * 60_000;
  const current = Math.floor(now.getTime() / step) * step;
  return Array.from({ length: 12 }, (_, k) => {
    const start = new Date(current - k * step);
    return `5m-${hourId(start)}${pad(start.getUTCMinutes())}`;
  });
}

/** The ids of the 24 hourly windows of the last day, the current one first. */
export function lastDayIds(now: Date): string[] {
  const step = 60 * 60_000;
  const current = Math.floor(now.getTime() / step) * step;
  return Array.from({ length: 24 }, (_, k) => `1h-${hourId(new Date(current - k * step))}`);
}

/** Every function's counters summed over ``windows``. */
export function sumWindows(windows: MetricsWindow[]): Map<string, Totals> {
  const totals = new Map<string, Totals>();
  for (const window of windows) {
    for (const [name, counters] of Object.entries(window.functions ?? {})) {
      let t = totals.get(name);
      if (!t) {
        t = { count: 0, ok: 0, outcomes: {}, buckets: new Map(), bounds: new Set() };
        totals.set(name, t);
      }
      for (const bound of window.bounds) t.bounds.add(bound);
      t.count += counters.count ?? 0;
      t.ok += counters.ok ?? 0;
      for (const [outcome, n] of Object.entries(counters.outcomes ?? {})) {
        t.outcomes[outcome] = (t.outcomes[outcome] ?? 0) + n;
      }
      for (const [key, n] of Object.entries(counters.latency ?? {})) {
        const bound = window.bounds[Number(key.slice(1))];
        if (bound === undefined) continue; // a bucket the window's bounds do not name
        t.buckets.set(bound, (t.buckets.get(bound) ?? 0) + n);
      }
    }
  }
  return totals;
}

/** A latency quantile; ``unbounded``: it fell above every bound, and ``ms`` is the last. */
export interface Quantile {
  ms: number;
  unbounded: boolean;
}

/** The ``q`` quantile (0.95 for p95) of ``totals``' latencies, undefined with none
 * measured: linear within the bucket it falls in, as firekit.metrics.percentile (and
 * Prometheus' histogram_quantile) read it; in the unbounded bucket, that bucket's start. */
export function percentile(totals: Totals, q: number): Quantile | undefined {
  const bounds = [...totals.bounds].sort((a, b) => (a === null ? 1 : b === null ? -1 : a - b));
  const measured = [...totals.buckets.values()].reduce((sum, n) => sum + n, 0);
  if (measured === 0) return undefined;
  const rank = q * measured;
  let below = 0;
  for (const [i, upper] of bounds.entries()) {
    const count = totals.buckets.get(upper) ?? 0;
    if (count && below + count >= rank) {
      const lower = i > 0 ? (bounds[i - 1] ?? 0) : 0;
      if (upper === null) return { ms: lower, unbounded: true };
      return { ms: lower + ((upper - lower) * Math.max(0, rank - below)) / count, unbounded: false };
    }
    below += count;
  }
  return undefined; // every count is in some bucket: not reached
}
