import { Agent, request } from 'node:http';

/** One prepared HTTP request: encoded ahead so the load generator spends little per request. */
export interface LoadRequest {
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export const jsonRequest = (path: string, body: unknown, headers: Record<string, string> = {}) => {
  const encoded = Buffer.from(JSON.stringify(body));
  return { path, body: encoded, headers: { 'content-type': 'application/json', ...headers } };
};

export interface LoadResult {
  readonly requests: number;
  /** From the first request sent to the last answer received. */
  readonly seconds: number;
  readonly perSecond: number;
  /** When each request was sent and answered (ms, performance.now()), and its answer's body. */
  readonly sentAt: readonly number[];
  readonly answeredAt: readonly number[];
  readonly bodies: readonly string[];
}

/** Sends requests over keep-alive connections, keeping every answer and when it came. */
function createSender(baseUrl: string, requests: readonly LoadRequest[], maxSockets: number) {
  const url = new URL(baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets });
  const sentAt: number[] = new Array(requests.length);
  const answeredAt: number[] = new Array(requests.length);
  const bodies: string[] = new Array(requests.length);
  const send = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const { path, headers, body } = requests[i] as LoadRequest;
      sentAt[i] = performance.now();
      const req = request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path,
          headers: { ...headers, 'content-length': String(body.length) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            answeredAt[i] = performance.now();
            bodies[i] = Buffer.concat(chunks).toString();
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve();
            else reject(new Error(`bench: POST ${path} answered ${status}: ${bodies[i]?.slice(0, 300)}`));
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const result = (): LoadResult => {
    const first = sentAt.reduce((a, b) => Math.min(a, b));
    const last = answeredAt.reduce((a, b) => Math.max(a, b));
    const seconds = (last - first) / 1000;
    return {
      requests: requests.length,
      seconds,
      perSecond: requests.length / seconds,
      sentAt,
      answeredAt,
      bodies,
    };
  };
  return { send, result, close: () => agent.destroy() };
}

/**
 * Sends every request with `concurrency` of them in flight (a closed loop: as fast as they are
 * answered), and throws if any is not answered 2xx (a benchmark of error answers measures nothing).
 */
export async function fire(
  baseUrl: string,
  requests: readonly LoadRequest[],
  concurrency: number,
): Promise<LoadResult> {
  const sender = createSender(baseUrl, requests, concurrency);
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: Math.min(concurrency, requests.length) }, async () => {
        while (next < requests.length) await sender.send(next++);
      }),
    );
  } finally {
    sender.close();
  }
  return sender.result();
}

/**
 * Sends the requests at `perSecond`, each at its scheduled moment whether or not earlier ones were
 * answered (an open loop, as independent callers arrive), and throws if any is not answered 2xx.
 */
export async function pace(
  baseUrl: string,
  requests: readonly LoadRequest[],
  perSecond: number,
): Promise<LoadResult> {
  const sender = createSender(baseUrl, requests, 64);
  const start = performance.now();
  const sent: Promise<void>[] = [];
  try {
    for (let i = 0; i < requests.length; i++) {
      const due = start + (i * 1000) / perSecond;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      const answered = sender.send(i);
      answered.catch(() => undefined); // reported by Promise.all below, not as unhandled meanwhile
      sent.push(answered);
    }
    await Promise.all(sent);
  } finally {
    sender.close();
  }
  return sender.result();
}
