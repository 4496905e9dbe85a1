import { main } from '@lookstream/destination'
import { recurlyEngage } from './recurly-engage.ts'

await main(recurlyEngage)
