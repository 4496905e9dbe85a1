import { isRecord } from './json-body.ts'

export type BrazeIdentifier =
  | { kind: 'external_id'; value: string }
  | { kind: 'braze_id'; value: string }
  | { kind: 'user_alias'; name: string; label: string }
  | { kind: 'email'; value: string }
  | { kind: 'phone'; value: string }

export type IdentifierResult = { ok: true; identifier: BrazeIdentifier } | { ok: false; error: string }

// Deliberately loose: Braze accepts most address shapes and only rejects obviously broken ones.
const emailPattern = /^[^\s@]+@[^\s@]+\.[^\s@]+$/

export const invalidEmailError = "The value provided for the 'email' field is not a valid email."

export function isValidEmail(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 255 && emailPattern.test(value)
}

/**
 * external_id, user_alias and braze_id are exclusive; email and phone identify the user only when none of those is
 * present (otherwise they are ordinary attributes), and email wins over phone.
 */
export function readBrazeIdentifier(object: Record<string, unknown>): IdentifierResult {
  const hasExternalId = object.external_id !== undefined
  const hasAlias = object.user_alias !== undefined
  const hasBrazeId = object.braze_id !== undefined
  if ((hasExternalId ? 1 : 0) + (hasAlias ? 1 : 0) + (hasBrazeId ? 1 : 0) > 1)
    return { ok: false, error: `Only one of 'external_id', 'user_alias' or 'braze_id' may be provided` }
  if (hasExternalId) {
    const value = object.external_id
    if (typeof value !== 'string' || value === '') return { ok: false, error: "'external_id' is not valid" }
    return { ok: true, identifier: { kind: 'external_id', value } }
  }
  if (hasBrazeId) {
    const value = object.braze_id
    if (typeof value !== 'string' || value === '') return { ok: false, error: "'braze_id' is not valid" }
    return { ok: true, identifier: { kind: 'braze_id', value } }
  }
  if (hasAlias) {
    const alias = object.user_alias
    if (
      !isRecord(alias) ||
      typeof alias.alias_name !== 'string' ||
      typeof alias.alias_label !== 'string' ||
      alias.alias_name === '' ||
      alias.alias_label === ''
    ) {
      return { ok: false, error: "'user_alias' must have a string 'alias_name' and 'alias_label'" }
    }
    return { ok: true, identifier: { kind: 'user_alias', name: alias.alias_name, label: alias.alias_label } }
  }
  if (object.email !== undefined) {
    if (!isValidEmail(object.email)) return { ok: false, error: invalidEmailError }
    return { ok: true, identifier: { kind: 'email', value: object.email.toLowerCase() } }
  }
  if (object.phone !== undefined) {
    if (typeof object.phone !== 'string' || object.phone === '') return { ok: false, error: "'phone' is not valid" }
    return { ok: true, identifier: { kind: 'phone', value: object.phone } }
  }
  return { ok: false, error: "An 'external_id', 'user_alias', 'braze_id', 'email' or 'phone' is required" }
}

export function describeIdentifier(identifier: BrazeIdentifier): string {
  return identifier.kind === 'user_alias'
    ? `user_alias:${identifier.label}:${identifier.name}`
    : `${identifier.kind}:${identifier.value}`
}
