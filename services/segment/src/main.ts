import { main } from '@lookstream/destination'
import { segment } from './segment.ts'

await main(segment)
