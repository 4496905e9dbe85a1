import { main } from '@lookstream/destination'
import { heap } from './heap.ts'

await main(heap)
