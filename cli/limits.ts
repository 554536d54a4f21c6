import { Queue } from 'bullmq';
import { type Command, InvalidArgumentError } from 'commander';
import { FAX_QUEUE } from '../shared/keys.ts';
import { createLogger } from '../shared/logger.ts';
import type { FaxJobData } from '../shared/queue.ts';
import { createHandoff } from '../shared/slots/handoff.ts';
import {
  assignProfile,
  type LimitsSnapshot,
  type LimitTarget,
  readLimits,
  setLimit,
} from '../shared/slots/limits.ts';
import type { SlotStore } from '../shared/slots/slots.ts';

const KINDS = ['account', 'destination', 'connection', 'profile'] as const;
type Kind = (typeof KINDS)[number];

/** `n` (0 or more) or `none`. */
export function parseLimitValue(value: string): number | 'none' {
  if (value === 'none') return 'none';
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('a limit is a whole number (0 or more) or "none"');
  return Number(value);
}

function parseTarget(kind: string, rest: readonly string[], withValue: boolean): [LimitTarget, string[]] {
  if (!(KINDS as readonly string[]).includes(kind)) {
    throw new InvalidArgumentError(`scope must be one of ${KINDS.join(', ')}`);
  }
  const needsId = kind === 'connection' || kind === 'profile';
  const expected = (needsId ? 1 : 0) + (withValue ? 1 : 0);
  if (rest.length !== expected) {
    const usage = [kind, needsId ? '<id>' : '', withValue ? '<limit>' : ''].filter(Boolean).join(' ');
    throw new InvalidArgumentError(`expected: ${usage}`);
  }
  const target = needsId
    ? { kind: kind as 'connection' | 'profile', id: rest[0] as string }
    : { kind: kind as Exclude<Kind, 'connection' | 'profile'> };
  return [target, rest.slice(needsId ? 1 : 0)];
}

const show = (limit: number | null) => (limit === null ? 'none' : String(limit));

/** The snapshot as an aligned table. */
export function formatLimits(snapshot: LimitsSnapshot): string {
  const rows = [
    ['scope', 'limit', 'effective', 'in flight', 'waiting', 'lowered until'],
    ...snapshot.scopes.map((s) => [
      s.scope,
      show(s.limit),
      show(s.effective),
      String(s.inFlight),
      String(s.waiting),
      s.loweredUntil ?? '',
    ]),
  ];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  const lines = rows.map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
  for (const [connection, profile] of Object.entries(snapshot.profiles)) {
    lines.push(`connection ${connection} is in outbound profile ${profile}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Registers `fax limits show|set|unset|assign|unassign` on the program. */
export function addLimitsCommands(program: Command, open: () => Promise<SlotStore>): void {
  const limits = program
    .command('limits')
    .description('channel limits: show them with current counts, or change them at run time');

  /** Reads the arguments: a bad one ends the command with its message (exit 2), not a stack trace. */
  function usage<T>(read: () => T): T {
    try {
      return read();
    } catch (error) {
      if (!(error instanceof InvalidArgumentError)) throw error;
      return limits.error(`fax limits: ${error.message}`, { exitCode: 2, code: 'fax.invalidArgument' });
    }
  }

  /** Runs a change, then wakes the faxes it lets through. */
  async function change(run: (store: SlotStore) => Promise<readonly string[]>, done: string) {
    const store = await open();
    const queue = new Queue<FaxJobData>(FAX_QUEUE, {
      connection: store.redis,
      prefix: store.keys.bullPrefix,
    });
    try {
      const wake = await run(store);
      const logger = createLogger('silent', 'fax-cli');
      await createHandoff({
        queue,
        redis: store.redis,
        keys: store.keys,
        logger,
        submitAttempts: 1,
      }).wake(wake);
      process.stdout.write(`${done}${wake.length > 0 ? ` (${wake.length} waiting fax(es) woken)` : ''}\n`);
    } finally {
      await queue.close();
      store.redis.disconnect();
    }
  }

  limits
    .command('show')
    .description('every scope with a limit or faxes in flight or waiting')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const store = await open();
      try {
        const snapshot = await readLimits(store);
        process.stdout.write(
          options.json ? `${JSON.stringify(snapshot, null, 2)}\n` : formatLimits(snapshot),
        );
      } finally {
        store.redis.disconnect();
      }
    });

  limits
    .command('set')
    .description(
      'set a limit: account <n>, destination <n>, connection <id> <n>, profile <name> <n> (n: 0 or more, or none)',
    )
    .argument('<scope>', KINDS.join(' | '))
    .argument('<args...>', '[id] limit')
    .action(async (kind: string, args: string[]) => {
      const [target, [value]] = usage(() => parseTarget(kind, args, true));
      const limit = usage(() => parseLimitValue(value as string));
      await change((store) => setLimit(store, target, limit), `${describe(target)}: limit ${limit}`);
    });

  limits
    .command('unset')
    .description("remove a limit set at run time: back to the environment's default")
    .argument('<scope>', KINDS.join(' | '))
    .argument('[id]', 'connection id or profile name')
    .action(async (kind: string, id: string | undefined) => {
      const [target] = usage(() => parseTarget(kind, id === undefined ? [] : [id], false));
      await change((store) => setLimit(store, target, undefined), `${describe(target)}: default limit`);
    });

  limits
    .command('assign')
    .description(
      'put a connection in an outbound profile; its faxes then count against the profile limit too',
    )
    .argument('<connection-id>')
    .argument('<profile>')
    .action(async (connection: string, profile: string) => {
      await change(
        (store) => assignProfile(store, connection, profile),
        `connection ${connection}: profile ${profile}`,
      );
    });

  limits
    .command('unassign')
    .description('take a connection out of its outbound profile')
    .argument('<connection-id>')
    .action(async (connection: string) => {
      await change(
        (store) => assignProfile(store, connection, undefined),
        `connection ${connection}: no profile`,
      );
    });
}

const describe = (target: LimitTarget) => ('id' in target ? `${target.kind} ${target.id}` : target.kind);
