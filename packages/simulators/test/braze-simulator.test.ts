import { afterEach, describe, expect, it } from 'vitest'
import { type BrazeProfile, type BrazeSimulator, type RejectedItem, startBrazeSimulator } from '../src/index.ts'
import { admin, bearer, call, type Page } from './http.ts'

const apiKey = 'test-braze-key'
const auth = bearer(apiKey)
let sim: BrazeSimulator

async function start(options: Parameters<typeof startBrazeSimulator>[0] = {}): Promise<BrazeSimulator> {
  sim = await startBrazeSimulator({ apiKeys: [apiKey], ...options })
  return sim
}

afterEach(async () => {
  await sim?.close()
})

function track(body: unknown, headers: Record<string, string> = auth) {
  return call<Record<string, unknown>>('POST', `${sim.url}/users/track`, { headers, body })
}

function profile(externalId: string): BrazeProfile {
  const found = sim.profiles.find({ kind: 'external_id', value: externalId })
  if (found === undefined) throw new Error(`no profile for ${externalId}`)
  return found
}

const time = '2025-06-01T06:00:00Z'

describe('braze simulator', () => {
  it('answers 401 to a missing or unknown Bearer key and 403 to a key without users.track', async () => {
    await start({ restrictedApiKeys: ['read-only-key'] })
    const body = { attributes: [{ external_id: 'u1', plan: 'annual' }] }
    expect((await track(body, {})).status).toBe(401)
    expect((await track(body, bearer('unknown'))).status).toBe(401)
    expect((await track(body, bearer('read-only-key'))).status).toBe(403)
    expect(sim.profiles.size).toBe(0)
  })

  it('answers 400 "Max Input Length Exceeded" above 75 objects combined, and accepts exactly 75', async () => {
    await start()
    const attributes = Array.from({ length: 40 }, (_, i) => ({ external_id: `u${i}`, plan: 'annual' }))
    const events = Array.from({ length: 36 }, (_, i) => ({ external_id: `u${i}`, name: 'renewed', time }))
    const over = await track({ attributes, events })
    expect(over.status).toBe(400)
    expect(over.body).toEqual({ message: 'Max Input Length Exceeded' })
    expect(sim.state.counters.accepted).toBe(0)
    const exact = await track({ attributes, events: events.slice(0, 35) })
    expect(exact.status).toBe(201)
    expect(exact.body).toEqual({ message: 'success', attributes_processed: 40, events_processed: 35 })
  })

  it('applies the object limit per array in per-array mode and honours a configured limit', async () => {
    await start({ objectLimitMode: 'per-array', maxObjects: 50 })
    const attributes = Array.from({ length: 50 }, (_, i) => ({ external_id: `u${i}`, plan: 'annual' }))
    const events = Array.from({ length: 50 }, (_, i) => ({ external_id: `u${i}`, name: 'renewed', time }))
    expect((await track({ attributes, events })).status).toBe(201)
    const tooMany = await track({ attributes: [...attributes, { external_id: 'x', plan: 'a' }] })
    expect(tooMany.status).toBe(400)
    expect(tooMany.body).toEqual({ message: 'Max Input Length Exceeded' })
  })

  it('answers 413 to a body over 4 MB', async () => {
    await start({ maxObjects: 1000, objectLimitMode: 'per-array' })
    const attributes = Array.from({ length: 600 }, (_, i) => ({ external_id: `u${i}`, blob: 'x'.repeat(7500) }))
    const res = await track({ attributes })
    expect(res.status).toBe(413)
    expect(sim.state.counters.accepted).toBe(0)
  })

  it('reports invalid objects as errors[] with input_array and index and processes the rest (2xx, message success)', async () => {
    await start()
    const res = await track({
      attributes: [
        { external_id: 'u1', plan: 'annual' },
        { plan: 'no identifier' },
        { external_id: 'u3', email: 'not-an-email' },
      ],
      events: [
        { external_id: 'u1', name: 'renewed', time },
        { external_id: 'u1', time },
        { external_id: 'u1', name: 'renewed', time: 'yesterday' },
      ],
      purchases: [
        { external_id: 'u1', product_id: 'annual', currency: 'USD', price: 99, quantity: 0, time },
        { external_id: 'u1', product_id: 'annual', currency: 'USD', price: '99', quantity: 1, time },
        { external_id: 'u1', product_id: 'annual', currency: 'USD', price: 99, quantity: 1, time },
      ],
    })
    expect(res.status).toBe(201)
    expect(res.body).toEqual({
      message: 'success',
      attributes_processed: 1,
      events_processed: 1,
      purchases_processed: 1,
      errors: [
        { type: expect.stringContaining('required') as unknown, input_array: 'attributes', index: 1 },
        { type: "The value provided for the 'email' field is not a valid email.", input_array: 'attributes', index: 2 },
        { type: "'name' is required", input_array: 'events', index: 1 },
        { type: "'time' is not valid", input_array: 'events', index: 2 },
        { type: "'quantity' is not valid", input_array: 'purchases', index: 0 },
        { type: "'price' is not valid", input_array: 'purchases', index: 1 },
      ],
    })
    expect(sim.state.counters.accepted).toBe(3)
    const rejected = await admin<Page<RejectedItem>>(sim.url, '/rejected')
    expect(rejected.items.map((item) => [item.kind, item.index])).toEqual([
      ['attributes', 1],
      ['attributes', 2],
      ['events', 1],
      ['events', 2],
      ['purchases', 0],
      ['purchases', 1],
    ])
    expect(profile('u1')).toMatchObject({ attributes: { plan: 'annual' }, events: 1, purchases: 1 })
  })

  it('answers 400 with errors when no object is valid, and when no data is given', async () => {
    await start()
    const invalid = await track({ attributes: [{ external_id: 'u1', email: 'bad' }] })
    expect(invalid.status).toBe(400)
    expect(invalid.body).toEqual({
      message: "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields.",
      errors: [
        { type: "The value provided for the 'email' field is not a valid email.", input_array: 'attributes', index: 0 },
      ],
    })
    expect((await track({})).status).toBe(400)
    expect((await track({ attributes: 'nope' })).status).toBe(400)
    const bad = await call('POST', `${sim.url}/users/track`, { headers: auth, raw: '{"attributes":' })
    expect(bad.status).toBe(400)
  })

  it('applies set, null-removes, inc, add/remove (unique, moved to the end, capped) and array replacement', async () => {
    await start({ maxArrayLength: 3 })
    await track({ attributes: [{ external_id: 'u1', plan: 'trial', logins: 1, tags: ['a', 'b', 'b'], old: 'x' }] })
    await track({
      attributes: [
        { external_id: 'u1', plan: 'annual', old: null, logins: { inc: 2 }, tags: { add: ['c', 'a'], remove: ['b'] } },
      ],
    })
    expect(profile('u1').attributes).toEqual({ plan: 'annual', logins: 3, tags: ['c', 'a'] })
    await track({ attributes: [{ external_id: 'u1', tags: { add: ['d', 'e'] } }] })
    // At the cap, the oldest value is discarded.
    expect(profile('u1').attributes.tags).toEqual(['a', 'd', 'e'])
    await track({ attributes: [{ external_id: 'u1', tags: ['v', 'w', 'x', 'y'] }] })
    expect(profile('u1').attributes.tags).toEqual(['v', 'w', 'x'])
  })

  it('applies $add, $update and $remove to arrays of objects and merges nested objects with _merge_objects', async () => {
    await start()
    await track({
      attributes: [
        {
          external_id: 'u1',
          pets: [
            { id: 1, name: 'Rex' },
            { id: 2, name: 'Tom' },
          ],
          address: { city: 'Paris', zip: '75001' },
        },
      ],
    })
    await track({
      attributes: [
        {
          external_id: 'u1',
          _merge_objects: true,
          pets: {
            $add: [{ id: 3, name: 'Kit' }],
            $update: [{ $identifier_key: 'id', $identifier_value: 1, $new_object: { name: 'Max' } }],
            $remove: [{ $identifier_key: 'id', $identifier_value: 2 }],
          },
          address: { zip: '75002' },
        },
      ],
    })
    expect(profile('u1').attributes).toEqual({
      pets: [
        { id: 1, name: 'Max' },
        { id: 3, name: 'Kit' },
      ],
      address: { city: 'Paris', zip: '75002' },
    })
  })

  it('skips unknown users in update-only mode without creating them, and updates seeded profiles', async () => {
    await start({ profiles: [{ external_id: 'known', attributes: { plan: 'trial' } }] })
    const res = await track({
      attributes: [
        { external_id: 'known', _update_existing_only: true, plan: 'annual' },
        { external_id: 'stranger', _update_existing_only: true, plan: 'annual' },
      ],
    })
    expect(res.status).toBe(201)
    expect(res.body).toEqual({ message: 'success', attributes_processed: 2 })
    expect(profile('known').attributes.plan).toBe('annual')
    expect(sim.profiles.find({ kind: 'external_id', value: 'stranger' })).toBeUndefined()
    expect(sim.state.skipped.toArray()).toMatchObject([{ index: 1, id: 'external_id:stranger' }])
    expect(sim.state.counters.accepted).toBe(1)
  })

  it('does not create an alias-only profile unless _update_existing_only is false', async () => {
    await start()
    const alias = { alias_name: 'a@b.com', alias_label: 'email' }
    await track({ attributes: [{ user_alias: alias, plan: 'x' }] })
    expect(sim.profiles.size).toBe(0)
    await track({ attributes: [{ user_alias: alias, _update_existing_only: false, plan: 'y' }] })
    expect(sim.profiles.find({ kind: 'user_alias', name: 'a@b.com', label: 'email' })?.attributes.plan).toBe('y')
    await track({ attributes: [{ external_id: 'new-user', plan: 'z' }] })
    expect(profile('new-user').attributes.plan).toBe('z')
  })

  it('sends x-ratelimit-* headers on every response and 429 with x-ratelimit-retry-after past the limit', async () => {
    await start({ rateLimit: { limit: 2, windowMs: 30_000 } })
    const body = { attributes: [{ external_id: 'u1', plan: 'annual' }] }
    const first = await track(body)
    expect(first.headers['x-ratelimit-limit']).toBe('2')
    expect(first.headers['x-ratelimit-remaining']).toBe('1')
    const reset = Number(first.headers['x-ratelimit-reset'])
    expect(reset).toBeGreaterThan(Date.now() / 1000)
    expect(reset).toBeLessThanOrEqual(Date.now() / 1000 + 31)
    const invalid = await track({})
    expect(invalid.status).toBe(400)
    expect(invalid.headers['x-ratelimit-remaining']).toBe('0')
    const limited = await track(body)
    expect(limited.status).toBe(429)
    expect(Number(limited.headers['x-ratelimit-retry-after'])).toBeGreaterThanOrEqual(20)
    expect(limited.headers['x-ratelimit-limit']).toBe('2')
  })

  it('seeds, lists and replaces profiles through the admin API, and reset restores the configured seeds', async () => {
    await start({ profiles: [{ external_id: 'seeded' }] })
    await admin(sim.url, '/profiles', 'POST', [{ external_id: 'extra', attributes: { vip: true } }])
    const listed = await admin<{ total: number; profiles: BrazeProfile[] }>(sim.url, '/profiles?external_id=extra')
    expect(listed.profiles).toMatchObject([{ external_id: 'extra', attributes: { vip: true } }])
    await track({ attributes: [{ external_id: 'extra', _update_existing_only: true, vip: false }] })
    expect(profile('extra').attributes.vip).toBe(false)
    await admin(sim.url, '/reset', 'POST')
    const after = await admin<{ total: number; profiles: BrazeProfile[] }>(sim.url, '/profiles')
    expect(after.profiles.map((p) => p.external_id)).toEqual(['seeded'])
    const badSeed = await call('POST', `${sim.url}/__admin/profiles`, { body: { nope: 1 } })
    expect(badSeed.status).toBe(400)
  })

  it('identifies by email only without another identifier: the profile with an external_id wins, else one is created', async () => {
    await start({ profiles: [{ email: 'shared@example.com' }, { external_id: 'owner', email: 'shared@example.com' }] })
    await track({ attributes: [{ email: 'Shared@example.com', plan: 'annual' }] })
    expect(profile('owner').attributes.plan).toBe('annual')
    expect(sim.profiles.size).toBe(2)
    await track({ attributes: [{ email: 'new@example.com', plan: 'trial' }] })
    expect(sim.profiles.size).toBe(3)
    expect(sim.profiles.find({ kind: 'email', value: 'new@example.com' })?.attributes.plan).toBe('trial')
    // An email sent with an external_id is an attribute, and moves the profile to the new address.
    await track({ attributes: [{ external_id: 'owner', email: 'moved@example.com' }] })
    expect(sim.profiles.find({ kind: 'email', value: 'moved@example.com' })?.external_id).toBe('owner')
    expect(sim.profiles.find({ kind: 'email', value: 'shared@example.com' })?.external_id).toBeUndefined()
  })

  it('gives every new profile its own braze_id of 24 hex digits, also after a reset, and lists profiles in creation order', async () => {
    await start()
    await track({ attributes: [{ external_id: 'a', plan: 'x' }, { email: 'b@example.com' }] })
    await admin(sim.url, '/profiles', 'POST', [{ braze_id: 'pinned', external_id: 'c' }])
    await track({ attributes: [{ external_id: 'd', plan: 'y' }] })
    const listed = await admin<{ total: number; profiles: BrazeProfile[] }>(sim.url, '/profiles')
    expect(listed.profiles.map((p) => p.external_id ?? p.email)).toEqual(['a', 'b@example.com', 'c', 'd'])
    const assigned = listed.profiles.filter((p) => p.braze_id !== 'pinned').map((p) => p.braze_id)
    expect(assigned).toHaveLength(3)
    for (const id of assigned) expect(id).toMatch(/^[0-9a-f]{24}$/)
    await admin(sim.url, '/reset', 'POST')
    await track({ attributes: [{ external_id: 'a', plan: 'x' }] })
    const again = profile('a').braze_id
    expect(again).toMatch(/^[0-9a-f]{24}$/)
    expect(new Set([...assigned, again]).size).toBe(4)
  })

  it('updates a profile by its braze_id, whether it was created before or after the first lookup by braze_id', async () => {
    await start()
    await track({ attributes: [{ external_id: 'early', plan: 'x' }] })
    const early = profile('early').braze_id
    const first = await track({ attributes: [{ braze_id: early, plan: 'by-id' }] })
    expect(first.body).toEqual({ message: 'success', attributes_processed: 1 })
    await track({ attributes: [{ external_id: 'late', plan: 'x' }] })
    await track({ attributes: [{ braze_id: profile('late').braze_id, plan: 'by-id' }] })
    expect([profile('early').attributes.plan, profile('late').attributes.plan]).toEqual(['by-id', 'by-id'])
    // An unknown braze_id is never created.
    await track({ attributes: [{ braze_id: 'f'.repeat(24), plan: 'x' }] })
    expect(sim.profiles.size).toBe(2)
    expect(sim.state.skipped.toArray()).toMatchObject([{ id: `braze_id:${'f'.repeat(24)}` }])
  })

  it('stores add/remove results as new arrays: neither the request nor an earlier value is changed', async () => {
    await start({ maxArrayLength: 2 })
    await track({ attributes: [{ external_id: 'u1', tags: ['a', 'b'] }] })
    const before = profile('u1').attributes.tags
    const update = { external_id: 'u1', tags: { add: ['c', 'a'], remove: ['b'] } }
    await track({ attributes: [update] })
    expect(profile('u1').attributes.tags).toEqual(['c', 'a'])
    expect(before).toEqual(['a', 'b'])
    expect(sim.state.accepted.toArray()[1]?.item).toEqual(update)
    // Re-adding a value moves it to the end; past the cap the oldest goes.
    await track({ attributes: [{ external_id: 'u1', tags: { add: ['c', 'd'] } }] })
    expect(profile('u1').attributes.tags).toEqual(['c', 'd'])
  })

  it('moves a user accepted again to the end of /__admin/ids with the time of its last acceptance', async () => {
    await start()
    await track({
      attributes: [
        { external_id: 'u1', plan: 'x' },
        { external_id: 'u2', plan: 'x' },
      ],
    })
    await track({
      attributes: [
        { external_id: 'u1', plan: 'y' },
        { external_id: 'u3', plan: 'y' },
      ],
    })
    const ids = await admin<{ total: number; ids: [string, number][] }>(sim.url, '/ids')
    expect(ids.ids.map(([id]) => id)).toEqual(['external_id:u2', 'external_id:u1', 'external_id:u3'])
    const times = ids.ids.map(([, time]) => time)
    expect(times).toEqual([...times].sort((x, y) => x - y))
    expect(times[1]).toBe(sim.state.accepted.toArray()[2]?.acceptedAt)
  })

  it('permits a key listed both with and without users.track', async () => {
    await start({ restrictedApiKeys: [apiKey, 'read-only-key'] })
    const body = { attributes: [{ external_id: 'u1', plan: 'annual' }] }
    expect((await track(body)).status).toBe(201)
    expect((await track(body, bearer('read-only-key'))).status).toBe(403)
  })

  describe('/users/track/bulk', () => {
    function trackBulk(body: unknown, headers: Record<string, string> = auth) {
      return call<Record<string, unknown>>('POST', `${sim.url}/users/track/bulk`, { headers, body })
    }
    const attributes = (n: number, from = 0) =>
      Array.from({ length: n }, (_, i) => ({ external_id: `b${from + i}`, plan: 'annual' }))

    it('takes up to 1,000 objects combined, answers 400 above, and applies them as /users/track does', async () => {
      await start()
      const over = await trackBulk({
        attributes: attributes(990),
        events: attributes(11).map(({ external_id }) => ({ external_id, name: 'renewed', time })),
      })
      expect(over.status).toBe(400)
      expect(over.body).toEqual({ message: 'Max Input Length Exceeded' })
      const exact = await trackBulk({ attributes: attributes(1000) })
      expect(exact.status).toBe(201)
      expect(exact.body).toEqual({ message: 'success', attributes_processed: 1000 })
      expect(sim.profiles.size).toBe(1000)
      expect(profile('b999').attributes.plan).toBe('annual')
      // /users/track keeps its own 75.
      expect((await track({ attributes: attributes(76) })).status).toBe(400)
    })

    it('answers 413 to a body over 2 MB', async () => {
      await start()
      const big = { attributes: [{ external_id: 'u1', note: 'x'.repeat(2 * 1024 * 1024) }] }
      expect((await trackBulk(big)).status).toBe(413)
      expect(sim.profiles.size).toBe(0)
    })

    it('answers 403 to a key without users.track.bulk and 401 to an unknown one', async () => {
      await start({ apiKeys: [apiKey, 'track-only-key'], bulkApiKeys: [apiKey] })
      const body = { attributes: attributes(2) }
      expect((await trackBulk(body, bearer('track-only-key'))).status).toBe(403)
      expect((await trackBulk(body, bearer('unknown'))).status).toBe(401)
      expect((await track(body, bearer('track-only-key'))).status).toBe(201)
      expect((await trackBulk(body)).status).toBe(201)
    })

    it('has a rate budget of its own, 50 requests a second by default', async () => {
      await start({ rateLimit: { limit: 1, windowMs: 30_000 } })
      const body = { attributes: attributes(1) }
      expect((await track(body)).status).toBe(201)
      expect((await track(body)).status).toBe(429)
      const bulkAnswer = await trackBulk(body)
      expect(bulkAnswer.status).toBe(201)
      expect(bulkAnswer.headers['x-ratelimit-limit']).toBe('50')
    })
  })
})
