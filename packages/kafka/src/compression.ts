import kafkajs, { CompressionTypes } from 'kafkajs'
import { promisify } from 'node:util'
import { zstdCompress, zstdDecompress } from 'node:zlib'

/** Producer compression lookstream offers: gzip (kafkajs' own) and zstd (Node's zlib, no native addon). */
export const PRODUCER_COMPRESSIONS = ['none', 'gzip', 'zstd'] as const
export type ProducerCompression = (typeof PRODUCER_COMPRESSIONS)[number]

// kafkajs is CommonJS and Node's ESM loader does not see CompressionCodecs among its named exports.
const { CompressionCodecs } = kafkajs
const compress = promisify(zstdCompress)
const decompress = promisify(zstdDecompress)

// kafkajs ships only gzip and looks other codecs up in this table, for producers and consumers alike; every
// client made by createKafka can therefore read zstd batches, whoever wrote them.
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  compress: async (encoder: { buffer: Buffer }) => compress(encoder.buffer),
  decompress: async (buffer: Buffer) => decompress(buffer),
})

export function compressionType(name: ProducerCompression): CompressionTypes {
  switch (name) {
    case 'none':
      return CompressionTypes.None
    case 'gzip':
      return CompressionTypes.GZIP
    case 'zstd':
      return CompressionTypes.ZSTD
  }
}
