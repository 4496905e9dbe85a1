import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { createDestinationMetrics, PartitionLag } from '../src/metrics.ts'

// After a rebalance a partition this member gave up must not keep its last lag: the autoscaler and the lag alerts
// add up every series, so the new owner's lag would be counted twice.

async function lagSeries(registry: Registry): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric('lookstream_destination_consumer_lag')!.get()
  return Object.fromEntries(metric.values.map((v) => [`${v.labels.topic}/${v.labels.partition}`, v.value]))
}

describe('PartitionLag', () => {
  it("reports each partition's lag and drops the partitions a new assignment does not hold", async () => {
    const registry = new Registry()
    const lag = new PartitionLag(createDestinationMetrics(registry).consumerLag, 'segment')
    lag.set('lookstream.identify.v1', 0, '100', '49')
    lag.set('lookstream.identify.v1', 1, '10', '9')
    lag.set('lookstream.track.v1', 0, '7', '2')
    lag.set('lookstream.identify.v1', 0, '100', '89')
    expect(await lagSeries(registry)).toEqual({
      'lookstream.identify.v1/0': 10,
      'lookstream.identify.v1/1': 0,
      'lookstream.track.v1/0': 4,
    })

    lag.keepOnly([
      { topic: 'lookstream.identify.v1', partition: 1 },
      { topic: 'lookstream.group.v1', partition: 0 },
    ])
    expect(await lagSeries(registry)).toEqual({ 'lookstream.identify.v1/1': 0 })

    // A partition given back later reports again from its next batch.
    lag.set('lookstream.track.v1', 0, '9', '2')
    expect(await lagSeries(registry)).toEqual({ 'lookstream.identify.v1/1': 0, 'lookstream.track.v1/0': 6 })
    lag.keepOnly([])
    expect(await lagSeries(registry)).toEqual({})
  })
})
