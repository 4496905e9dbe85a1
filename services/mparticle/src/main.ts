import { main } from '@lookstream/destination'
import { mparticle } from './mparticle.ts'

await main(mparticle)
