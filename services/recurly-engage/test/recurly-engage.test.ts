import { PermanentError, type FileRow } from '@lookstream/destination'
import { type CanonicalMessage } from '@lookstream/events'
import { describe, expect, it } from 'vitest'
import { RecurlyEngageConfig } from '../src/config.ts'
import { fileName, recurlyEngage } from '../src/recurly-engage.ts'
import { toRecurlyRow } from '../src/rows.ts'
import { loadConfig } from '@lookstream/config'

function identify(userId: string | undefined, traits: Record<string, unknown>): CanonicalMessage {
  return {
    type: 'identify',
    messageId: 'm-1',
    ...(userId === undefined ? {} : { userId }),
    traits,
    timestamp: '2026-11-22T06:00:00.000Z',
    integrations: { All: false, 'Recurly Engage': { connection: 'default' } },
  }
}

function row(message: CanonicalMessage): FileRow {
  const result = toRecurlyRow(message)
  if (result instanceof PermanentError) throw result
  return result
}

describe('recurly-engage rows', () => {
  it('writes user_id first, then the traits in order, RFC 4180 byte for byte', () => {
    const result = row(
      identify('u,1', {
        'Users Name': 'Zoë "Z" Ünal',
        'Users Note': 'line one\nline two\r\nthree',
        'Users Plan': null,
        'Users LTV': 150.5,
        'Users Active': false,
        'Users Empty': '',
        'Users Lead': ' spaced ',
        'Users Emoji': '😀,中文',
      }),
    )
    expect(result.columns).toEqual([
      'user_id',
      'Users Name',
      'Users Note',
      'Users Plan',
      'Users LTV',
      'Users Active',
      'Users Empty',
      'Users Lead',
      'Users Emoji',
    ])
    expect(Buffer.from(result.line, 'utf8')).toEqual(
      Buffer.from('"u,1","Zoë ""Z"" Ünal","line one\nline two\r\nthree",,150.5,false,, spaced ,"😀,中文"\r\n', 'utf8'),
    )
    expect(recurlyEngage.encodeHeader(result.columns)).toBe(
      'user_id,Users Name,Users Note,Users Plan,Users LTV,Users Active,Users Empty,Users Lead,Users Emoji\r\n',
    )
    expect(recurlyEngage.encodeHeader(['user_id', 'a,b', 'say "hi"'])).toBe('user_id,"a,b","say ""hi"""\r\n')
  })

  it('quotes a cell holding a lone LF or CR', () => {
    expect(row(identify('u1', { a: 'x\ny', b: 'x\ry', c: 'plain' })).line).toBe('u1,"x\ny","x\ry",plain\r\n')
  })

  it('writes formula-like text unchanged (no escaping that would alter values)', () => {
    expect(row(identify('=1+1', { a: '-2', b: '@x' })).line).toBe('=1+1,-2,@x\r\n')
  })

  it('refuses rows it cannot write, naming the column and never the value', () => {
    const nested = toRecurlyRow(identify('u1', { 'Users Address': { city: 'secret-city' } }))
    expect(nested).toBeInstanceOf(PermanentError)
    expect((nested as PermanentError).message).toBe(
      'trait "Users Address" holds a object; a CSV cell takes text, numbers and booleans',
    )
    expect((nested as PermanentError).message).not.toContain('secret-city')
    expect((toRecurlyRow(identify('u1', { list: [1] })) as PermanentError).code).toBe('LS_DEST_UNSUPPORTED_VALUE')
    expect((toRecurlyRow(identify(undefined, { a: 1 })) as PermanentError).code).toBe('LS_DEST_MISSING_IDENTITY')
    expect((toRecurlyRow(identify('u1', { user_id: 'x' })) as PermanentError).message).toBe(
      'trait "user_id" would repeat the first column',
    )
    const track = { ...identify('u1', {}), type: 'track', event: 'e' } as CanonicalMessage
    expect((toRecurlyRow(track) as PermanentError).code).toBe('LS_DEST_UNSUPPORTED_MESSAGE')
  })

  it('names files traits_YYYYMMDDTHHmmssZ.csv from the send start, with fallbacks for a second send that second', () => {
    expect(fileName(new Date('2026-12-06T06:00:07.123Z'))).toBe('traits_20261206T060007Z.csv')
    const connection = [...recurlyEngage.connections(config({ RECURLY_ENGAGE_S3_BUCKET: 'bucket-a' })).values()][0]!
    expect(
      recurlyEngage.objectNames({ sendId: 'abcdef12-3456', startedAt: new Date('2026-12-06T06:00:07Z') }, connection),
    ).toEqual([
      'traits_20261206T060007Z.csv',
      'traits_20261206T060007Z_abcdef12.csv',
      'traits_20261206T060007Z_abcdef12-3456.csv',
    ])
  })
})

function config(env: Record<string, string>) {
  return loadConfig(RecurlyEngageConfig, env)
}

describe('recurly-engage connections', () => {
  it('builds the default connection from the flat variables, path-style with an endpoint', () => {
    const connections = recurlyEngage.connections(
      config({
        RECURLY_ENGAGE_S3_BUCKET: 'engage-bucket',
        RECURLY_ENGAGE_S3_PREFIX: 'ingest',
        RECURLY_ENGAGE_S3_ENDPOINT: 'http://127.0.0.1:9000',
        RECURLY_ENGAGE_S3_ACCESS_KEY_ID: 'AKIA',
        RECURLY_ENGAGE_S3_SECRET_ACCESS_KEY: 'secret',
      }),
    )
    expect(connections.get('default')?.sink).toMatchObject({
      bucket: 'engage-bucket',
      prefix: 'ingest/',
      stagingPrefix: 'lookstream-staging/',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIA', secretAccessKey: 'secret' },
    })
  })

  it('adds named connections and refuses unsafe ones with every problem named, never a secret', () => {
    const named = recurlyEngage.connections(
      config({
        RECURLY_ENGAGE_CONNECTIONS: JSON.stringify({ eu: { bucket: 'eu-bucket', prefix: 'in/', region: 'eu-west-1' } }),
      }),
    )
    expect([...named.keys()]).toEqual(['eu'])
    expect(named.get('eu')?.sink).toMatchObject({ region: 'eu-west-1', forcePathStyle: false, credentials: undefined })
    let message = ''
    try {
      recurlyEngage.connections(
        config({
          RECURLY_ENGAGE_S3_BUCKET: 'bucket-a',
          RECURLY_ENGAGE_S3_PREFIX: 'lookstream-staging/in/',
          RECURLY_ENGAGE_CONNECTIONS: JSON.stringify({
            other: { bucket: 'bucket-b', endpoint: 'http://evil.example:9000', accessKeyId: 'only-the-id-XYZ' },
          }),
        }),
      )
    } catch (err) {
      message = (err as Error).message
    }
    expect(message).toContain('a staging prefix outside the upload location (connection "default")')
    expect(message).toContain('an endpoint on RECURLY_ENGAGE_ALLOWED_HOSTS (connection "other")')
    expect(message).toContain('both an access key id and a secret access key, or neither (connection "other")')
    expect(message).not.toContain('only-the-id-XYZ')
  })
})
