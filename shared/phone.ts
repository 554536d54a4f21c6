import { parsePhoneNumberFromString } from 'libphonenumber-js';

/** True for a valid number written in E.164 (`+` and digits only, as Telnyx expects). */
export function isE164(value: string): boolean {
  if (!/^\+[1-9]\d{1,14}$/.test(value)) return false;
  return parsePhoneNumberFromString(value)?.isValid() ?? false;
}

const sipUri = /^sips?:[^\s@:;]+@[A-Za-z0-9.-]+(:\d{1,5})?(;[^\s]*)?$/;

/** Telnyx's `to`: an E.164 number or a SIP URI (`sip:user@host`). */
export function isFaxDestination(value: string): boolean {
  return isE164(value) || sipUri.test(value);
}
