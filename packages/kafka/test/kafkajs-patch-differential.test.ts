import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { hasGnuPatch, stockKafkajs } from './support/stock-kafkajs.ts'

// The patched kafkajs (patches/, docs/adr/0009) must put exactly the bytes of the published kafkajs 2.2.4 on
// the wire. Both are loaded side by side and fed the same random input from a fixed seed.

/* eslint-disable @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call,
   @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-explicit-any -- kafkajs internals are untyped */

interface Kafkajs {
  Encoder: any
  Record: any
  Request: any
  produce: Record<number, any>
}

function load(requireFrom: NodeJS.Require, prefix: string): Kafkajs {
  const r = (path: string): any => requireFrom(`${prefix}src/protocol/${path}`)
  return {
    Encoder: r('encoder'),
    Record: r('recordBatch/record/v0'),
    Request: r('request'),
    produce: {
      3: r('requests/produce/v3/request'),
      5: r('requests/produce/v5/request'),
      7: r('requests/produce/v7/request'),
    },
  }
}

// mulberry32: a small seeded generator, so a failure reproduces.
function generator(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number) => Math.floor(next() * n)
  const text = (max: number) => {
    const alphabet = ['a', 'Z', '0', ' ', 'é', '中', '😀', '"', '\\', '\n']
    return Array.from({ length: int(max + 1) }, () => alphabet[int(alphabet.length)]).join('')
  }
  const bytes = (max: number) => Buffer.from(Array.from({ length: int(max + 1) }, () => int(256)))
  const data = (max: number): string | Buffer | null => {
    const kind = int(10)
    return kind === 0 ? null : kind < 4 ? bytes(max) : text(max)
  }
  return { next, int, text, bytes, data }
}

const SEED = 0x10c5_7ea1
const NOW = 1_780_000_000_000

let dir: string
let patched: Kafkajs
let stock: Kafkajs

beforeAll(() => {
  if (!hasGnuPatch()) return
  dir = mkdtempSync(join(tmpdir(), 'kafkajs-stock-'))
  stock = load(createRequire(join(stockKafkajs(join(dir, 'kafkajs')), 'index.js')), './')
  patched = load(createRequire(import.meta.url), 'kafkajs/')
})

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

describe.skipIf(!hasGnuPatch())('patched kafkajs writes the bytes of the published kafkajs 2.2.4', () => {
  it('compares two different builds: the published one lacks the patch', () => {
    expect(typeof patched.Record.prepare).toBe('function')
    expect(stock.Record.prepare).toBeUndefined()
  })

  it('encodes varints and varlongs identically, at every boundary and at random', () => {
    const rnd = generator(SEED)
    const ints = [
      0,
      1,
      -1,
      63,
      64,
      -64,
      -65,
      8191,
      8192,
      2 ** 20,
      2 ** 30 - 1,
      2 ** 30,
      -(2 ** 30),
      2 ** 31 - 1,
      -(2 ** 31),
    ]
    for (let i = 0; i < 2000; i += 1) ints.push(Math.floor((rnd.next() - 0.5) * 2 ** 32) | 0)
    const longs = [...ints, 2 ** 31, 2 ** 40, -(2 ** 40), 2 ** 52, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]
    for (let i = 0; i < 2000; i += 1) longs.push(Math.floor((rnd.next() - 0.5) * 2 ** 53))
    const encode = (k: Kafkajs, write: (e: any) => void) => {
      const e = new k.Encoder()
      write(e)
      return e.buffer as Buffer
    }
    for (const n of ints) {
      expect(
        encode(patched, (e) => e.writeVarInt(n)),
        `varint ${n}`,
      ).toEqual(encode(stock, (e) => e.writeVarInt(n)))
      if (n >= 0) {
        expect(
          encode(patched, (e) => e.writeUVarInt(n)),
          `uvarint ${n}`,
        ).toEqual(encode(stock, (e) => e.writeUVarInt(n)))
      }
    }
    for (const n of longs) {
      expect(
        encode(patched, (e) => e.writeVarLong(n)),
        `varlong ${n}`,
      ).toEqual(encode(stock, (e) => e.writeVarLong(n)))
      expect(patched.Encoder.sizeOfVarLong(n), `sizeOfVarLong ${n}`).toBe(stock.Encoder.sizeOfVarLong(n))
    }
  })

  function randomRecord(rnd: ReturnType<typeof generator>, frozen: Record<string, string>) {
    const headers: Record<string, unknown> | undefined =
      rnd.int(4) === 0
        ? undefined
        : rnd.int(3) === 0
          ? frozen
          : Object.fromEntries(
              Array.from({ length: rnd.int(4) }, (_, i) => [
                `h${i}${rnd.text(5)}`,
                rnd.int(5) === 0 ? [rnd.text(8), rnd.bytes(8)] : rnd.int(2) === 0 ? rnd.text(30) : rnd.bytes(30),
              ]),
            )
    return {
      key: rnd.data(40),
      value: rnd.int(50) === 0 ? rnd.text(3000) : rnd.data(400),
      headers,
      timestampDelta: rnd.int(8) === 0 ? Math.floor((rnd.next() - 0.5) * 2e12) : rnd.int(10_000),
      offsetDelta: rnd.int(100_000),
    }
  }

  it('encodes 3,000 random records identically (strings, Buffers, null, unicode, header arrays, frozen headers)', () => {
    const rnd = generator(SEED + 1)
    const frozen = Object.freeze({ 'lookstream.kind': 'identify', 'lookstream.send': rnd.text(20) })
    for (let i = 0; i < 3000; i += 1) {
      const record = randomRecord(rnd, frozen)
      const ours = patched.Record(record).buffer as Buffer
      const theirs = stock.Record(record).buffer as Buffer
      expect(ours.equals(theirs), `record ${i}`).toBe(true)
    }
  })

  async function request(k: Kafkajs, version: 3 | 5 | 7, args: Record<string, unknown>): Promise<Buffer> {
    const produce = k.produce[version]({ ...args })
    const framed = await k.Request({ correlationId: 42, clientId: 'lookstream-test', request: produce })
    return framed.buffer as Buffer
  }

  function randomProduce(rnd: ReturnType<typeof generator>, frozen: Record<string, string>) {
    const topics = Array.from({ length: 1 + rnd.int(3) }, (_, t) => ({
      topic: `lookstream.topic-${t}.${rnd.text(4).replace(/[^a-zA-Z0-9]/g, 'x')}`,
      partitions: Array.from({ length: 1 + rnd.int(4) }, (_, p) => ({
        partition: p,
        firstSequence: rnd.int(1000),
        messages: Array.from({ length: 1 + rnd.int(40) }, () => {
          const r = randomRecord(rnd, frozen)
          // Some messages without a timestamp: Date.now() is fixed below for both clients.
          return {
            key: r.key,
            value: r.value,
            headers: r.headers,
            timestamp: rnd.int(4) === 0 ? undefined : NOW + rnd.int(60_000),
          }
        }),
      })),
    }))
    return {
      acks: [-1, 1, 0][rnd.int(3)],
      timeout: 30_000,
      transactionalId: rnd.int(4) === 0 ? `tx-${rnd.text(6)}` : null,
      topicData: topics,
    }
  }

  it('frames 150 whole random Produce v3, v5 and v7 requests identically', async () => {
    vi.spyOn(Date, 'now').mockReturnValue(NOW)
    const rnd = generator(SEED + 2)
    const frozen = Object.freeze({ 'lookstream.kind': 'track' })
    for (let i = 0; i < 150; i += 1) {
      const args = randomProduce(rnd, frozen)
      const version = ([3, 5, 7] as const)[i % 3]!
      const ours = await request(patched, version, args)
      const theirs = await request(stock, version, args)
      expect(ours.equals(theirs), `request ${i} (v${version})`).toBe(true)
    }
  })

  it('frames 30 gzip-compressed Produce requests identically', async () => {
    vi.spyOn(Date, 'now').mockReturnValue(NOW)
    const rnd = generator(SEED + 3)
    const frozen = Object.freeze({ 'lookstream.kind': 'group' })
    const GZIP = 1
    for (let i = 0; i < 30; i += 1) {
      const args = { ...randomProduce(rnd, frozen), compression: GZIP }
      const version = ([3, 7] as const)[i % 2]!
      expect(
        (await request(patched, version, args)).equals(await request(stock, version, args)),
        `gzip request ${i}`,
      ).toBe(true)
    }
  })
})
