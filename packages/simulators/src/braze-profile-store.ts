import { randomFillSync } from 'node:crypto'
import { type BrazeIdentifier, invalidEmailError, isValidEmail } from './braze-identifier.ts'
import { isRecord } from './json-body.ts'

export interface BrazeAlias {
  alias_name: string
  alias_label: string
}

export interface BrazeProfile {
  braze_id: string
  external_id: string | undefined
  user_aliases: BrazeAlias[]
  email: string | undefined
  phone: string | undefined
  /** Custom and standard attributes as Braze would hold them after every update so far. */
  attributes: Record<string, unknown>
  events: number
  purchases: number
  createdAt: number
  updatedAt: number
}

export interface BrazeProfileSeed {
  external_id?: string
  braze_id?: string
  user_alias?: BrazeAlias
  email?: string
  phone?: string
  attributes?: Record<string, unknown>
}

export interface AttributeLimits {
  /** Simple-array attributes keep at most this many values (Braze's default is 25). */
  maxArrayLength: number
  /** An array-of-objects attribute above this many bytes is dropped silently (100 KB). */
  maxObjectArrayBytes: number
}

export interface AttributeUpdate {
  /** Attributes whose update Braze drops without an error (reported back so the simulator can record it). */
  dropped: { attribute: string; reason: string }[]
}

// Keys of an attributes object that steer the update rather than name an attribute.
const controlKeys = new Set([
  'external_id',
  'braze_id',
  'user_alias',
  '_update_existing_only',
  '_merge_objects',
  'push_token_import',
])

type Scalar = string | number | boolean

function isScalar(value: unknown): value is Scalar {
  return (
    typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))
  )
}

/**
 * The alias list of every profile that has none (most): one frozen array shared by them instead of an empty one per
 * profile. A profile's first alias replaces it with a list of its own.
 */
const NO_ALIASES: BrazeAlias[] = Object.freeze([]) as unknown as BrazeAlias[]

function addAlias(profile: BrazeProfile, alias: BrazeAlias): void {
  if (profile.user_aliases === NO_ALIASES) profile.user_aliases = [alias]
  else profile.user_aliases.push(alias)
}

/** List values shared between profiles: at most this many distinct ones, each at most this long. */
const MAX_SHARED_VALUES = 1024
const MAX_SHARED_VALUE_LENGTH = 255

function aliasKey(label: string, name: string): string {
  return `${label}\u0000${name}`
}

function deepMerge(target: Record<string, unknown>, source: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...target }
  for (const [key, value] of Object.entries(source)) {
    const existing = out[key]
    out[key] = isRecord(existing) && isRecord(value) ? deepMerge(existing, value) : value
  }
  return out
}

/** Checks one attribute value against the shapes Braze accepts; returns the error text or undefined. */
export function attributeValueError(name: string, value: unknown): string | undefined {
  if (name.startsWith('$')) return `'${name}' is not a valid attribute name`
  if (name === 'email' && value !== null && !isValidEmail(value)) return invalidEmailError
  if (value === null || isScalar(value)) return undefined
  if (Array.isArray(value)) {
    return value.every((v) => isScalar(v) || isRecord(v)) ? undefined : `'${name}' holds an array with an invalid value`
  }
  if (!isRecord(value)) return `'${name}' is not valid`
  if ('inc' in value) {
    return typeof value.inc === 'number' && Number.isFinite(value.inc)
      ? undefined
      : `'${name}' increment must be a number`
  }
  if ('add' in value || 'remove' in value) {
    const add = value.add
    if (add !== undefined && (!Array.isArray(add) || !add.every(isScalar)))
      return `'${name}' add must be an array of values`
    const remove = value.remove
    if (remove !== undefined && (!Array.isArray(remove) || !remove.every(isScalar)))
      return `'${name}' remove must be an array of values`
    return undefined
  }
  if ('$add' in value || '$update' in value || '$remove' in value) {
    if (value.$add !== undefined && (!Array.isArray(value.$add) || !value.$add.every(isRecord)))
      return `'${name}' $add must be an array of objects`
    for (const op of ['$update', '$remove'] as const) {
      const list = value[op]
      if (list === undefined) continue
      if (!Array.isArray(list)) return `'${name}' ${op} must be an array`
      for (const entry of list) {
        if (!isRecord(entry) || typeof entry.$identifier_key !== 'string' || entry.$identifier_value === undefined) {
          return `'${name}' ${op} entries need $identifier_key and $identifier_value`
        }
        if (op === '$update' && !isRecord(entry.$new_object)) return `'${name}' $update entries need a $new_object`
      }
    }
    return undefined
  }
  return undefined
}

/**
 * `current` without the values in `remove`, then each value of `add` moved to (or put at) the end, keeping the last
 * `max` values: a new array, `current` is left as it is.
 */
function addAndRemove(
  current: unknown,
  add: unknown,
  remove: unknown,
  max: number,
  shared: (value: Scalar) => Scalar,
): Scalar[] {
  // The usual case, a label added to a profile that has none: the one value, without the copies below.
  if (current === undefined && Array.isArray(add) && add.length === 1 && max >= 1) return [shared(add[0] as Scalar)]
  const next: Scalar[] = []
  if (Array.isArray(current)) {
    for (let i = 0; i < current.length; i++) {
      // Holes are skipped, as Array.prototype.filter skips them.
      if (!(i in current)) continue
      const value = current[i] as Scalar
      if (!(remove as Scalar[] | undefined)?.includes(value)) next.push(value)
    }
  }
  for (const added of (add as Scalar[] | undefined) ?? []) {
    // Re-adding moves the value to the end; at the cap the oldest value is discarded.
    let kept = 0
    for (let i = 0; i < next.length; i++) {
      const value = next[i] as Scalar
      if (value !== added) next[kept++] = value
    }
    next.length = kept
    next.push(shared(added))
  }
  // A copy of exactly the values kept: the attribute holds no spare capacity.
  return next.slice(Math.max(0, next.length - max))
}

export class BrazeProfileStore {
  /** Every profile in creation order: what `list()` and `size` report. */
  readonly #profiles: BrazeProfile[] = []
  /**
   * braze_id → profile, built at the first lookup by braze_id (or the first profile created with a given braze_id)
   * and kept up to date from then on: most sends never look a profile up by braze_id.
   */
  #byBrazeId: Map<string, BrazeProfile> | undefined
  readonly #byExternalId = new Map<string, BrazeProfile>()
  readonly #byAlias = new Map<string, BrazeProfile>()
  readonly #byContact = new Map<string, Set<BrazeProfile>>()
  readonly #limits: AttributeLimits
  /**
   * One copy of each short string added to a list attribute (an export label is added to every profile of a send;
   * parsed from each request, it would otherwise be held once per profile). Bounded: past the limit, values are
   * kept as they came.
   */
  readonly #listValues = new Map<string, string>()
  readonly #shared = (value: Scalar): Scalar => {
    if (typeof value !== 'string' || value.length > MAX_SHARED_VALUE_LENGTH) return value
    const held = this.#listValues.get(value)
    if (held !== undefined) return held
    if (this.#listValues.size < MAX_SHARED_VALUES) this.#listValues.set(value, value)
    return value
  }
  /** The last braze_id assigned, as bytes: six random ones for this store, then a counter, so none repeats. */
  readonly #lastBrazeId = randomFillSync(Buffer.alloc(12), 0, 6)

  constructor(limits: AttributeLimits) {
    this.#limits = limits
  }

  get size(): number {
    return this.#profiles.length
  }

  list(): BrazeProfile[] {
    return this.#profiles.slice()
  }

  clear(): void {
    this.#profiles.length = 0
    this.#byBrazeId = undefined
    this.#byExternalId.clear()
    this.#byAlias.clear()
    this.#byContact.clear()
    this.#listValues.clear()
  }

  find(identifier: BrazeIdentifier): BrazeProfile | undefined {
    switch (identifier.kind) {
      case 'external_id':
        return this.#byExternalId.get(identifier.value)
      case 'braze_id':
        return this.#brazeIdIndex().get(identifier.value)
      case 'user_alias':
        return this.#byAlias.get(aliasKey(identifier.label, identifier.name))
      case 'email':
      case 'phone':
        return this.#findByContact(identifier.kind, identifier.value)
    }
  }

  create(identifier: BrazeIdentifier, now = Date.now()): BrazeProfile {
    const profile: BrazeProfile = {
      // braze_ids are assigned by Braze; seeding may still pin one so tests can address the profile.
      braze_id: identifier.kind === 'braze_id' ? identifier.value : this.#nextBrazeId(),
      external_id: undefined,
      user_aliases: NO_ALIASES,
      email: undefined,
      phone: undefined,
      attributes: {},
      events: 0,
      purchases: 0,
      createdAt: now,
      updatedAt: now,
    }
    if (identifier.kind === 'braze_id') {
      const index = this.#brazeIdIndex()
      const replaced = index.get(profile.braze_id)
      // A braze_id names one profile: pinning one already held takes that profile's place.
      if (replaced === undefined) this.#profiles.push(profile)
      else this.#profiles[this.#profiles.indexOf(replaced)] = profile
      index.set(profile.braze_id, profile)
    } else {
      this.#profiles.push(profile)
      this.#byBrazeId?.set(profile.braze_id, profile)
    }
    switch (identifier.kind) {
      case 'external_id':
        profile.external_id = identifier.value
        this.#byExternalId.set(identifier.value, profile)
        break
      case 'user_alias':
        addAlias(profile, { alias_name: identifier.name, alias_label: identifier.label })
        this.#byAlias.set(aliasKey(identifier.label, identifier.name), profile)
        break
      case 'email':
        this.#setContact(profile, 'email', identifier.value)
        profile.attributes.email = identifier.value
        break
      case 'phone':
        this.#setContact(profile, 'phone', identifier.value)
        profile.attributes.phone = identifier.value
        break
      case 'braze_id':
        // Pinned above.
        break
    }
    return profile
  }

  /** 24 hex digits, as Braze's ids are. */
  #nextBrazeId(): string {
    const id = this.#lastBrazeId
    for (let i = id.length - 1; i >= 6; i--) {
      id[i] = (id[i]! + 1) & 0xff
      if (id[i] !== 0) break
    }
    return id.toString('hex')
  }

  #brazeIdIndex(): Map<string, BrazeProfile> {
    if (this.#byBrazeId === undefined) {
      this.#byBrazeId = new Map()
      for (const profile of this.#profiles) this.#byBrazeId.set(profile.braze_id, profile)
    }
    return this.#byBrazeId
  }

  seed(seeds: readonly BrazeProfileSeed[]): BrazeProfile[] {
    return seeds.map((seed) => {
      const identifier: BrazeIdentifier | undefined =
        seed.braze_id !== undefined
          ? { kind: 'braze_id', value: seed.braze_id }
          : seed.external_id !== undefined
            ? { kind: 'external_id', value: seed.external_id }
            : seed.user_alias !== undefined
              ? { kind: 'user_alias', name: seed.user_alias.alias_name, label: seed.user_alias.alias_label }
              : seed.email !== undefined
                ? { kind: 'email', value: seed.email.toLowerCase() }
                : seed.phone !== undefined
                  ? { kind: 'phone', value: seed.phone }
                  : undefined
      if (identifier === undefined)
        throw new Error('a seeded profile needs external_id, braze_id, user_alias, email or phone')
      const profile = this.find(identifier) ?? this.create(identifier)
      if (seed.external_id !== undefined && profile.external_id === undefined) {
        profile.external_id = seed.external_id
        this.#byExternalId.set(seed.external_id, profile)
      }
      if (
        seed.user_alias !== undefined &&
        !this.#byAlias.has(aliasKey(seed.user_alias.alias_label, seed.user_alias.alias_name))
      ) {
        addAlias(profile, { ...seed.user_alias })
        this.#byAlias.set(aliasKey(seed.user_alias.alias_label, seed.user_alias.alias_name), profile)
      }
      if (seed.email !== undefined)
        this.#setContact(profile, 'email', (profile.attributes.email = seed.email.toLowerCase()))
      if (seed.phone !== undefined) this.#setContact(profile, 'phone', (profile.attributes.phone = seed.phone))
      Object.assign(profile.attributes, seed.attributes)
      return profile
    })
  }

  /** Applies a validated attributes object (see attributeValueError) to the profile. */
  applyAttributes(profile: BrazeProfile, object: Record<string, unknown>, now = Date.now()): AttributeUpdate {
    const dropped: AttributeUpdate['dropped'] = []
    this.applyAttributesInto(profile, object, dropped, now)
    return { dropped }
  }

  /** As applyAttributes, appending the attributes Braze drops to `dropped` instead of returning a new list. */
  applyAttributesInto(
    profile: BrazeProfile,
    object: Record<string, unknown>,
    dropped: AttributeUpdate['dropped'],
    now = Date.now(),
  ): void {
    const mergeObjects = object._merge_objects === true
    const attributes = profile.attributes
    for (const name in object) {
      if (!Object.hasOwn(object, name) || controlKeys.has(name)) continue
      const value = object[name]
      if (value === null) {
        delete attributes[name]
      } else if (isScalar(value)) {
        attributes[name] = value
      } else if (Array.isArray(value)) {
        if (value.every(isScalar)) attributes[name] = this.#capArray(unique(value))
        else this.#setObjectArray(attributes, name, value, dropped)
      } else if (isRecord(value)) {
        if ('inc' in value) {
          const current = attributes[name]
          attributes[name] = (typeof current === 'number' ? current : 0) + (value.inc as number)
        } else if ('add' in value || 'remove' in value) {
          attributes[name] = addAndRemove(
            attributes[name],
            value.add,
            value.remove,
            this.#limits.maxArrayLength,
            this.#shared,
          )
        } else if ('$add' in value || '$update' in value || '$remove' in value) {
          this.#applyObjectArrayOps(attributes, name, value, dropped)
        } else {
          const current = attributes[name]
          attributes[name] = mergeObjects && isRecord(current) ? deepMerge(current, value) : value
        }
      }
      if (name === 'email') {
        this.#setContact(
          profile,
          'email',
          typeof attributes.email === 'string' ? attributes.email.toLowerCase() : undefined,
        )
      }
      if (name === 'phone') {
        this.#setContact(profile, 'phone', typeof attributes.phone === 'string' ? attributes.phone : undefined)
      }
    }
    profile.updatedAt = now
  }

  #capArray(values: Scalar[]): Scalar[] {
    return values.length > this.#limits.maxArrayLength ? values.slice(0, this.#limits.maxArrayLength) : values
  }

  #setObjectArray(
    attributes: Record<string, unknown>,
    name: string,
    next: unknown[],
    dropped: AttributeUpdate['dropped'],
  ): void {
    if (Buffer.byteLength(JSON.stringify(next)) > this.#limits.maxObjectArrayBytes) {
      dropped.push({ attribute: name, reason: `array of objects over ${this.#limits.maxObjectArrayBytes} bytes` })
      return
    }
    attributes[name] = next
  }

  #applyObjectArrayOps(
    attributes: Record<string, unknown>,
    name: string,
    ops: Record<string, unknown>,
    dropped: AttributeUpdate['dropped'],
  ): void {
    let next = Array.isArray(attributes[name]) ? [...(attributes[name] as Record<string, unknown>[])] : []
    const matches = (entry: Record<string, unknown>) => (item: Record<string, unknown>) =>
      item[entry.$identifier_key as string] === entry.$identifier_value
    for (const entry of (ops.$remove as Record<string, unknown>[] | undefined) ?? []) {
      next = next.filter((item) => !matches(entry)(item))
    }
    for (const entry of (ops.$update as Record<string, unknown>[] | undefined) ?? []) {
      next = next.map((item) =>
        matches(entry)(item) ? deepMerge(item, entry.$new_object as Record<string, unknown>) : item,
      )
    }
    next.push(...((ops.$add as Record<string, unknown>[] | undefined) ?? []))
    this.#setObjectArray(attributes, name, next, dropped)
  }

  #setContact(profile: BrazeProfile, kind: 'email' | 'phone', value: string | undefined): void {
    const old = profile[kind]
    if (old === value) return
    if (old !== undefined) {
      const holders = this.#byContact.get(`${kind}:${old}`)
      holders?.delete(profile)
      if (holders?.size === 0) this.#byContact.delete(`${kind}:${old}`)
    }
    profile[kind] = value
    if (value === undefined) return
    const key = `${kind}:${value}`
    const holders = this.#byContact.get(key) ?? new Set<BrazeProfile>()
    holders.add(profile)
    this.#byContact.set(key, holders)
  }

  #findByContact(kind: 'email' | 'phone', value: string): BrazeProfile | undefined {
    // Several profiles may share an address: the most recently updated one with an external_id wins.
    let best: BrazeProfile | undefined
    for (const profile of this.#byContact.get(`${kind}:${value}`) ?? []) {
      if (best === undefined) {
        best = profile
        continue
      }
      const rank = (p: BrazeProfile): number => (p.external_id === undefined ? 0 : 1)
      if (rank(profile) > rank(best) || (rank(profile) === rank(best) && profile.updatedAt >= best.updatedAt))
        best = profile
    }
    return best
  }
}

function unique(values: Scalar[]): Scalar[] {
  return [...new Set(values)]
}
