import { parsePhoneNumberFromString } from 'libphonenumber-js';
import { timezones } from 'libphonenumber-geo-carrier';
import { DateTime, IANAZone } from 'luxon';
import { z } from 'zod';

/**
 * Office hours for a fax (ours, not Telnyx's): it is only sent while the window is open, in the
 * recipient's time zone — derived from the destination number where the number maps to one zone,
 * else given as `time_zone`. The window governs when a send may start; a call that starts at 17:59
 * is not cut off at 18:00.
 */
export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface SendingWindow {
  /** The days the window opens on (its start time's day, for a window past midnight). */
  readonly days: readonly Weekday[];
  /** `HH:MM` (or `HH:MM:SS`), 24-hour, local time. */
  readonly start: string;
  /** `HH:MM`; earlier than `start` for a window that runs past midnight (`22:00`–`06:00`). */
  readonly end: string;
  /** IANA zone (`America/Chicago`); filled in from the number when left out. */
  readonly time_zone?: string | undefined;
}

const clock = /^([01]\d|2[0-3]):([0-5]\d)(:[0-5]\d)?$/;
const WORKDAYS: readonly Weekday[] = ['mon', 'tue', 'wed', 'thu', 'fri'];

export function isTimeZone(zone: string): boolean {
  return IANAZone.isValidZone(zone);
}

/** `mon-fri`, `sat`, `mon,wed,fri` or `fri-mon` (wrapping) as a list of days. */
function parseDays(spec: string): Weekday[] | undefined {
  const days = new Set<Weekday>();
  for (const part of spec.toLowerCase().split(',')) {
    const [from, to, extra] = part.trim().split('-');
    const a = WEEKDAYS.indexOf(from as Weekday);
    const b = to === undefined ? a : WEEKDAYS.indexOf(to as Weekday);
    if (a < 0 || b < 0 || extra !== undefined) return undefined;
    for (let i = a; ; i = (i + 1) % 7) {
      days.add(WEEKDAYS[i] as Weekday);
      if (i === b) break;
    }
  }
  return WEEKDAYS.filter((day) => days.has(day));
}

const daysSchema = z
  .union([z.string(), z.array(z.string())], {
    error: 'must be a list of days (["mon","tue"]) or a range ("mon-fri")',
  })
  .transform((value, ctx) => {
    const days = parseDays(Array.isArray(value) ? value.join(',') : value);
    if (days === undefined || days.length === 0) {
      ctx.addIssue({ code: 'custom', message: `must name days as ${WEEKDAYS.join(', ')} (e.g. "mon-fri")` });
      return z.NEVER;
    }
    return days;
  });

const windowObject = z
  .strictObject(
    {
      days: daysSchema.optional(),
      start: z.string({ error: 'is required (HH:MM)' }).regex(clock, 'must be a time as HH:MM (24-hour)'),
      end: z.string({ error: 'is required (HH:MM)' }).regex(clock, 'must be a time as HH:MM (24-hour)'),
      time_zone: z
        .string({ error: 'must be an IANA time zone such as America/Chicago' })
        .refine(isTimeZone, 'must be an IANA time zone such as America/Chicago')
        .optional(),
    },
    {
      error: (issue) =>
        issue.code === 'unrecognized_keys' ? 'is not a field of a sending window' : undefined,
    },
  )
  .refine((w) => secondsOf(w.start) !== secondsOf(w.end), {
    path: ['end'],
    message: 'must differ from start',
  })
  .transform((w): SendingWindow => ({ ...w, days: w.days ?? WORKDAYS }));

/**
 * A window as an object (`{ "days": "mon-fri", "start": "08:00", "end": "18:00", "time_zone": … }`)
 * or the same in one string: `mon-fri 08:00-18:00 [America/Chicago]` (days default to Monday–Friday).
 */
export const sendingWindowSchema = z.preprocess(
  (value) => (typeof value === 'string' ? parseWindowString(value) : value),
  windowObject,
);

function parseWindowString(value: string): unknown {
  const parts = value.trim().split(/\s+/);
  const hours = parts.findIndex((part) => /^[\d:]+[-–][\d:]+$/.test(part));
  if (hours < 0 || hours > 1 || parts.length > hours + 2) {
    return { start: value, end: value }; // Fails with the HH:MM message below.
  }
  const [start, end] = (parts[hours] as string).split(/[-–]/);
  return {
    ...(hours === 1 ? { days: parts[0] } : {}),
    start,
    end,
    ...(parts[hours + 1] !== undefined ? { time_zone: parts[hours + 1] } : {}),
  };
}

export type ZoneResult =
  | { readonly ok: true; readonly zone: string }
  | { readonly ok: false; readonly detail: string };

/** The recipient's time zone: the window's own, else the one zone the number maps to. */
export async function recipientTimeZone(to: string, window: SendingWindow): Promise<ZoneResult> {
  if (window.time_zone !== undefined) return { ok: true, zone: window.time_zone };
  const number = to.startsWith('+') ? parsePhoneNumberFromString(to) : undefined;
  const zones = number ? await timezones(number) : null;
  if (zones?.length === 1 && isTimeZone(zones[0] as string)) return { ok: true, zone: zones[0] as string };
  const why = !number
    ? `${to} is not a phone number`
    : zones && zones.length > 1
      ? `${to} may be in any of ${zones.length} time zones`
      : `no time zone is known for ${to}`;
  return { ok: false, detail: `sending_window.time_zone is required: ${why}` };
}

function secondsOf(time: string): number {
  const { hour, minute, second } = clockOf(time);
  return hour * 3600 + minute * 60 + second;
}

function clockOf(time: string): { hour: number; minute: number; second: number } {
  const [hour, minute, second] = time.split(':').map(Number);
  return { hour: hour ?? 0, minute: minute ?? 0, second: second ?? 0 };
}

/**
 * The first moment at or after `now` (ms) when the window is open: `now` itself while it is open.
 * Local times that do not exist (a DST gap) move forward with the clock. A window without a zone (the
 * producer always fills it in) is read as UTC.
 */
export function nextOpening(window: SendingWindow, now: number): number {
  const start = clockOf(window.start);
  const end = clockOf(window.end);
  const pastMidnight = secondsOf(window.end) <= secondsOf(window.start);
  const length = (secondsOf(window.end) - secondsOf(window.start) + 86_400) % 86_400;
  const today = DateTime.fromMillis(now, { zone: window.time_zone ?? 'UTC' }).startOf('day');
  let next = Number.POSITIVE_INFINITY;
  // Yesterday's window may still be open past midnight; a week ahead always holds an opening day.
  for (let offset = -1; offset <= 7; offset++) {
    const day = today.plus({ days: offset });
    if (!window.days.includes(WEEKDAYS[day.weekday - 1] as Weekday)) continue;
    const opens = day.set(start);
    let closes = day.plus({ days: pastMidnight ? 1 : 0 }).set(end);
    // A window inside a DST gap (02:30–03:30 on a spring-forward night) opens when the clock allows
    // and stays open as long as it would have.
    if (closes <= opens) closes = opens.plus({ seconds: length });
    if (opens.toMillis() <= now && now < closes.toMillis()) return now;
    if (opens.toMillis() > now) next = Math.min(next, opens.toMillis());
  }
  return next;
}
