// Sidecar-wide state Envoy keeps outside any one VM: custom metrics (one stats scope for all workers),
// shared data and shared queues (process-wide, keyed by VM id), and the captured log.
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "critical";
export const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error", "critical"];

export interface LogEntry {
  level: LogLevel;
  message: string;
  /** Worker index of the VM that logged, or "canary" for Envoy's configuration check VM, or "host". */
  worker: number | "canary" | "host";
  /** proxy_log, WASI stdout/stderr, or the host itself (traps, refusals). */
  source: "proxy_log" | "stdout" | "stderr" | "host";
}

export type MetricType = "counter" | "gauge" | "histogram";
export const METRIC_TYPES: readonly MetricType[] = ["counter", "gauge", "histogram"];

export interface Metric {
  name: string;
  type: MetricType;
  /** Counter total or gauge value. */
  value: bigint;
  /** Every value recorded into a histogram, in order. */
  samples: bigint[];
}

export class SharedData {
  private nextCas = 1;
  private readonly data = new Map<string, Map<string, { value: Uint8Array; cas: number }>>();

  get(vmId: string, key: string) {
    return this.data.get(vmId)?.get(key);
  }

  /** Ok (0) or CasMismatch (8), as proxy-wasm-cpp-host's SharedData::set. */
  set(vmId: string, key: string, value: Uint8Array, cas: number): 0 | 8 {
    let map = this.data.get(vmId);
    if (!map) this.data.set(vmId, (map = new Map()));
    const cur = map.get(key);
    if (cur && cas !== 0 && cas !== cur.cas) return 8;
    map.set(key, { value, cas: this.nextCas++ });
    return 0;
  }
}

export interface QueueOwner {
  /** Called (asynchronously, as Envoy posts to the owner's dispatcher) when data is enqueued. */
  notify(token: number): void;
}

export class SharedQueues {
  private nextToken = 1;
  private readonly byName = new Map<string, number>();
  private readonly queues = new Map<number, { items: Uint8Array[]; owner: QueueOwner }>();

  register(vmId: string, name: string, owner: QueueOwner): number {
    const key = `${vmId}\0${name}`;
    let token = this.byName.get(key);
    if (token === undefined) {
      token = this.nextToken++;
      this.byName.set(key, token);
      this.queues.set(token, { items: [], owner });
    } else {
      this.queues.get(token)!.owner = owner;
    }
    return token;
  }

  resolve(vmId: string, name: string): number | undefined {
    return this.byName.get(`${vmId}\0${name}`);
  }

  /** Ok (0), Empty (7) or NotFound (1). */
  dequeue(token: number): Uint8Array | 1 | 7 {
    const q = this.queues.get(token);
    if (!q) return 1;
    return q.items.shift() ?? 7;
  }

  /** Ok (0) or NotFound (1). */
  enqueue(token: number, data: Uint8Array): 0 | 1 {
    const q = this.queues.get(token);
    if (!q) return 1;
    q.items.push(data);
    q.owner.notify(token);
    return 0;
  }
}
