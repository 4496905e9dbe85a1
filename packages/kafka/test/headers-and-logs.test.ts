import { Writable } from 'node:stream'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { fromKafkaHeaders, kafkaLogLevelFor, parseBrokers, pinoLogCreator, toKafkaHeaders } from '../src/index.ts'

function captureLogger(level: string) {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)
      done()
    },
  })
  return { logger: pino({ level }, stream), lines }
}

describe('headers', () => {
  it('round-trips string headers through kafkajs Buffers', () => {
    const headers = { 'lookstream-send-id': 'snd_1', 'lookstream-destinations': 'braze,heap', empty: '', utf8: 'ünï' }
    const kafka = toKafkaHeaders(headers)!
    const asReceived = Object.fromEntries(Object.entries(kafka).map(([k, v]) => [k, Buffer.from(String(v))]))
    expect(fromKafkaHeaders(asReceived)).toEqual(headers)
  })

  it('takes the first value of a repeated header and skips undefined ones', () => {
    expect(fromKafkaHeaders({ a: [Buffer.from('1'), Buffer.from('2')], b: undefined })).toEqual({ a: '1' })
    expect(fromKafkaHeaders(undefined)).toEqual({})
  })
})

describe('brokers', () => {
  it('parses KAFKA_BROKERS lists', () => {
    expect(parseBrokers('127.0.0.1:9092, 127.0.0.1:9093')).toEqual(['127.0.0.1:9092', '127.0.0.1:9093'])
    expect(parseBrokers(['127.0.0.1:1'])).toEqual(['127.0.0.1:1'])
    expect(() => parseBrokers(' , ')).toThrow(/no Kafka brokers/)
  })
})

describe('kafkajs logs to pino', () => {
  it('maps pino levels to kafkajs levels', () => {
    // kafkajs logLevel: NOTHING 0, ERROR 1, WARN 2, INFO 4, DEBUG 5
    expect(kafkaLogLevelFor(pino({ level: 'debug' }))).toBe(5)
    expect(kafkaLogLevelFor(pino({ level: 'info' }))).toBe(4)
    expect(kafkaLogLevelFor(pino({ level: 'warn' }))).toBe(2)
    expect(kafkaLogLevelFor(pino({ level: 'error' }))).toBe(1)
    expect(kafkaLogLevelFor(pino({ level: 'silent' }))).toBe(0)
  })

  it('logs at the mapped level with the namespace and without record data or credentials', () => {
    const { logger, lines } = captureLogger('debug')
    const log = pinoLogCreator(logger)(4)
    log({
      namespace: 'Producer',
      level: 2,
      label: 'WARN',
      log: {
        timestamp: 'x',
        message: 'retrying',
        broker: '127.0.0.1:9092',
        value: 'secret-row',
        sasl: { password: 'p' },
      },
    })
    log({ namespace: 'Consumer', level: 1, label: 'ERROR', log: { timestamp: 'x', message: 'crash' } })
    expect(lines).toMatchObject([
      { level: 40, kafka: 'Producer', msg: 'retrying', broker: '127.0.0.1:9092' },
      { level: 50, kafka: 'Consumer', msg: 'crash' },
    ])
    expect(JSON.stringify(lines)).not.toMatch(/secret-row|password/)
  })

  it("logs kafkajs's pause and resume of fetching at debug, not info", () => {
    for (const level of ['info', 'debug'] as const) {
      const { logger, lines } = captureLogger(level)
      const log = pinoLogCreator(logger)(4)
      for (const message of [
        'Pausing fetching from 1 topics',
        'Resuming fetching from 1 topics',
        'Consumer has joined',
      ]) {
        log({ namespace: 'ConsumerGroup', level: 4, label: 'INFO', log: { timestamp: 'x', message } })
      }
      expect(lines.map((line) => [line.level, line.msg])).toEqual(
        level === 'info'
          ? [[30, 'Consumer has joined']]
          : [
              [20, 'Pausing fetching from 1 topics'],
              [20, 'Resuming fetching from 1 topics'],
              [30, 'Consumer has joined'],
            ],
      )
    }
  })
})
