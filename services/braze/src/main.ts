import { main } from '@lookstream/destination'
import { braze } from './braze.ts'

await main(braze)
