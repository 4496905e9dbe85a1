// `npm run sample`: sends a small Look through the pipeline that `npm start` runs, the way Looker does
// (execute with a one-time download_url), then shows its rows arriving in the Segment simulator.
//
// Environment (defaults match `npm start`):
//   INGRESS_URL              http://127.0.0.1:8080
//   SEGMENT_SIMULATOR_URL    http://127.0.0.1:4010
//   ACTION_HUB_SECRET        else the one `npm start` keeps in .data/action-hub-secret
//   SAMPLE_ROWS              25
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { generateToken } from '../services/ingress/src/looker/token.ts'

const root = join(import.meta.dirname, '..')
const ingressUrl = process.env.INGRESS_URL ?? 'http://127.0.0.1:8080'
const simulatorUrl = process.env.SEGMENT_SIMULATOR_URL ?? 'http://127.0.0.1:4010'
const rows = Number(process.env.SAMPLE_ROWS ?? 25)
const LOOKER_PORT = 8099 // listed in the ingress's LOOKER_HOSTS by `npm start`

function secret(): string {
  if (process.env.ACTION_HUB_SECRET) return process.env.ACTION_HUB_SECRET
  const file = join(root, '.data', 'action-hub-secret')
  if (!existsSync(file))
    throw new Error('no .data/action-hub-secret: is `npm start` running? (or set ACTION_HUB_SECRET)')
  return readFileSync(file, 'utf8').trim()
}

function look(ranAt: string): string {
  const fields = {
    dimensions: [
      { name: 'users.id', label: 'Users ID', tags: ['user_id'] },
      { name: 'users.email', label: 'Users Email', tags: ['email'] },
      { name: 'users.plan', label: 'Users Plan', tags: [] },
    ],
    measures: [{ name: 'orders.count', label: 'Orders Count', tags: [] }],
  }
  const data = Array.from({ length: rows }, (_, i) => ({
    'users.id': { value: `sample-user-${i + 1}` },
    'users.email': { value: `user${i + 1}@example.com` },
    'users.plan': { value: i % 3 === 0 ? 'annual' : 'monthly' },
    'orders.count': { value: i % 5 },
  }))
  return JSON.stringify({ ran_at: ranAt, fields, data })
}

async function acceptedTotal(): Promise<number> {
  const res = await fetch(`${simulatorUrl}/__admin/ids?offset=0&limit=1`)
  if (!res.ok) throw new Error(`Segment simulator at ${simulatorUrl} answered ${res.status}`)
  return ((await res.json()) as { total: number }).total
}

async function main(): Promise<void> {
  const token = generateToken(secret())
  const ranAt = new Date().toISOString()
  const body = look(ranAt)
  let served = false
  const looker = createServer((req, res) => {
    // Looker's download URLs are single-use.
    if (served || req.url !== '/download/sample') return void res.writeHead(404).end()
    served = true
    res.writeHead(200, { 'content-type': 'application/json' }).end(body)
  })
  await new Promise<void>((resolve, reject) => looker.once('error', reject).listen(LOOKER_PORT, '127.0.0.1', resolve))
  try {
    const before = await acceptedTotal()
    console.log(`Sending a ${rows}-row Look to ${ingressUrl}/actions/segment_identify/execute …`)
    const res = await fetch(`${ingressUrl}/actions/segment_identify/execute`, {
      method: 'POST',
      headers: {
        authorization: `Token token="${token}"`,
        'content-type': 'application/json',
        'user-agent': 'LookerOutgoingWebhook/24.0.0',
      },
      body: JSON.stringify({
        type: 'query',
        scheduled_plan: {
          scheduled_plan_id: 1,
          title: 'lookstream sample',
          type: 'Look',
          download_url: `http://127.0.0.1:${LOOKER_PORT}/download/sample`,
        },
        data: {},
        form_params: { connection: 'default' },
      }),
    })
    const answer = JSON.parse((await res.text()).trim()) as {
      looker: { success: boolean; message: string; send_id?: string }
    }
    console.log(`Looker would see: ${JSON.stringify(answer.looker)}`)
    if (!answer.looker.success) process.exitCode = 1

    const deadline = Date.now() + 60_000
    let arrived = 0
    while (Date.now() < deadline) {
      arrived = (await acceptedTotal()) - before
      process.stdout.write(`\rSegment simulator accepted ${arrived}/${rows} events`)
      if (arrived >= rows) break
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    process.stdout.write('\n')
    if (arrived < rows) {
      console.error(`only ${arrived} of ${rows} events arrived within 60 s: see the segment service's output`)
      process.exitCode = 1
      return
    }
    const last = (await (
      await fetch(`${simulatorUrl}/__admin/accepted?offset=${before + rows - 1}&limit=1`)
    ).json()) as {
      items: { item: unknown }[]
    }
    console.log(`The last event as Segment received it:\n${JSON.stringify(last.items[0]?.item, null, 2)}`)
    if (answer.looker.send_id) {
      const send = await fetch(`${ingressUrl}/sends/${answer.looker.send_id}`, {
        headers: { authorization: `Token token="${token}"` },
      })
      console.log(
        `The send record (GET /sends/${answer.looker.send_id}):\n${JSON.stringify(await send.json(), null, 2)}`,
      )
    }
  } finally {
    looker.close()
  }
}

await main()
