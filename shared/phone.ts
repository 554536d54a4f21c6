import { parsePhoneNumberFromString } from 'libphonenumber-js';

/**
 * Numbers already checked, and the answer: parsing with libphonenumber costs more than the rest of
 * queueing a fax, and most faxes come from a handful of `from` numbers. Bounded: emptied when full.
 */
const checked = new Map<string, boolean>();
const CHECKED_LIMIT = 10_000;

/** True for a valid number written in E.164 (`+` and digits only, as Telnyx expects). */
export function isE164(value: string): boolean {
  if (!/^\+[1-9]\d{1,14}$/.test(value)) return false;
  const known = checked.get(value);
  if (known !== undefined) return known;
  const valid = parsePhoneNumberFromString(value)?.isValid() ?? false;
  if (checked.size >= CHECKED_LIMIT) checked.clear();
  checked.set(value, valid);
  return valid;
}

const sipUri = /^sips?:[^\s@:;]+@[A-Za-z0-9.-]+(:\d{1,5})?(;[^\s]*)?$/;

/** Telnyx's `to`: an E.164 number or a SIP URI (`sip:user@host`). */
export function isFaxDestination(value: string): boolean {
  return isE164(value) || sipUri.test(value);
}
