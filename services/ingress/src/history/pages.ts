import { FAILURE_STAGES, type FailureSummary, type StoredFailure } from '@lookstream/send-history'
import { type SendRecord } from '../sends/send-store.ts'
import { type DryRunReport } from './dry-run.ts'
import { type FailureFilter, filterQuery } from './failure-filter.ts'
import { formatCount, formatDuration, html, type Html } from './html.ts'

export const BASE = '/history'

const STAGE_LABELS: Record<string, string> = {
  rejected: 'Rejected at the ingress',
  'dead-lettered': 'Dead-lettered after retries',
  failed: 'Rejected by the destination',
}

export function layout(title: string, body: Html, options: { signedIn: boolean }): string {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>${title} · lookstream</title>
        <link rel="stylesheet" href="${BASE}/assets/history.css" />
        <script src="${BASE}/assets/live.js" defer></script>
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header>
          <nav aria-label="Send history"><a href="${BASE}">lookstream send history</a></nav>
          ${options.signedIn ? html`<form method="post" action="${BASE}/logout"><button type="submit" class="link">Sign out</button></form>` : ''}
        </header>
        <main id="main" tabindex="-1">${body}</main>
      </body>
    </html> `.text
}

export function loginPage(error: string | undefined): string {
  return layout(
    'Sign in',
    html`<h1>Sign in to the send history</h1>
      <p>
        Use the viewer token configured as <code>VIEWER_TOKEN</code>. It only reads; the Action Hub token is not
        accepted here.
      </p>
      <form class="login" method="post" action="${BASE}/login">
        <label for="token">Viewer token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="current-password"
          required
          size="40"
          ${error ? html`aria-invalid="true" aria-describedby="token-error"` : ''}
        />
        ${error ? html`<p id="token-error" class="error" role="alert">${error}</p>` : ''}
        <p><button type="submit">Sign in</button></p>
      </form>`,
    { signedIn: false },
  )
}

function time(iso: string | undefined): Html {
  if (!iso) return html`<span class="muted">—</span>`
  return html`<time datetime="${iso}"
    >${iso
      .replace('T', ' ')
      .replace(/\.\d+Z$/, ' UTC')
      .replace(/Z$/, ' UTC')}</time
  >`
}

function duration(send: SendRecord, now: number): string {
  const start = Date.parse(send.startedAt)
  if (Number.isNaN(start)) return '—'
  const end = send.finishedAt ? Date.parse(send.finishedAt) : now
  return `${formatDuration(Math.max(0, end - start))}${send.finishedAt ? '' : ' so far'}`
}

function lookAndPlan(send: SendRecord): Html {
  const parts: Html[] = []
  if (send.lookId) parts.push(html`Look ${send.lookId}`)
  if (send.scheduledPlanId) parts.push(html`schedule ${send.scheduledPlanId}`)
  if (parts.length === 0) return html`<span class="muted">not given</span>`
  return html`${parts.map((p, i) => (i === 0 ? p : html`, ${p}`))}`
}

function statusCell(send: SendRecord): Html {
  // Looker is told such a send did not succeed (some rows were rejected); the record says it ran to the end.
  const status = send.status === 'succeeded' && send.rejected > 0 ? 'partial' : send.status
  return html`<span class="status-${status}">${status}</span
    >${send.mode === 'dry_run' ? html` <span class="muted">(dry run)</span>` : ''}`
}

/**
 * Accepted rows the destination is done with: delivered, dead-lettered, or delivered before (`already_delivered`
 * may also count a message of this send redelivered after a restart, so the sum is capped at the accepted rows).
 */
function doneRows(send: SendRecord): number {
  return Math.min(send.accepted, (send.delivered ?? 0) + (send.deadLettered ?? 0) + (send.alreadyDelivered ?? 0))
}

function deliveredBefore(send: SendRecord): string {
  const rows = send.alreadyDelivered ?? 0
  return rows === 0
    ? ''
    : `, ${formatCount(rows)} delivered before (by an earlier send of the same run: not sent again)`
}

function deliveryProgress(send: SendRecord): Html {
  const done = doneRows(send)
  if (send.accepted === 0) return html``
  const label = `${formatCount(done)} of ${formatCount(send.accepted)} accepted rows delivered or dead-lettered`
  return html`<progress max="${send.accepted}" value="${done}" aria-label="${label}" title="${label}"></progress>`
}

function isLive(send: SendRecord): boolean {
  if (send.mode === 'dry_run') return send.status === 'running'
  return send.status === 'running' || (send.status !== 'failed' && doneRows(send) < send.accepted)
}

export function sendListPage(
  sends: readonly SendRecord[],
  summaries: ReadonlyMap<string, FailureSummary | undefined>,
  next: number | undefined,
  now = Date.now(),
): string {
  const live = sends.some(isLive)
  const rows = sends.map((send) => {
    const failures = summaries.get(send.sendId)
    return html`<tr>
      <td>${time(send.startedAt)}</td>
      <td>
        <a href="${BASE}/sends/${send.sendId}" aria-label="Send ${send.sendId}"
          ><code>${send.sendId.slice(0, 8)}</code></a
        >
      </td>
      <td>${lookAndPlan(send)}</td>
      <td>${send.action}</td>
      <td>${send.connection}</td>
      <td>${statusCell(send)}</td>
      <td class="num">${formatCount(send.received)}</td>
      <td class="num">${send.skippedUnchanged === undefined ? '—' : formatCount(send.skippedUnchanged)}</td>
      <td class="num">${formatCount(send.accepted)}</td>
      <td class="num">${formatCount(send.rejected)}</td>
      <td class="num">${formatCount(send.delivered ?? 0)} ${deliveryProgress(send)}</td>
      <td class="num">${formatCount(send.failed ?? 0)}</td>
      <td class="num">${formatCount(send.deadLettered ?? 0)}</td>
      <td class="num">${failures ? formatCount(failures.total) : '—'}</td>
      <td>${duration(send, now)}</td>
    </tr>`
  })
  const body = html`<h1>Sends</h1>
    <p id="live-status" class="muted" aria-live="polite">
      ${live ? html`Some sends are still running. <a href="${BASE}">Reload</a> for the latest counts (updates by themselves with JavaScript).` : ''}
    </p>
    ${
      sends.length === 0
        ? html`<p>No sends recorded yet.</p>`
        : html`<div class="scroll" role="region" aria-label="Sends" tabindex="0">
            <table id="sends" data-live ${live ? html`data-running` : ''}>
              <caption>
                Sends, newest first
              </caption>
              <thead>
                <tr>
                  <th scope="col">Started</th>
                  <th scope="col">Send</th>
                  <th scope="col">Look / schedule</th>
                  <th scope="col">Action</th>
                  <th scope="col">Connection</th>
                  <th scope="col">Status</th>
                  <th scope="col" class="num">Received</th>
                  <th scope="col" class="num">Skipped unchanged</th>
                  <th scope="col" class="num">Accepted</th>
                  <th scope="col" class="num">Rejected</th>
                  <th scope="col" class="num">Delivered</th>
                  <th scope="col" class="num">Failed (retried)</th>
                  <th scope="col" class="num">Dead-lettered</th>
                  <th scope="col" class="num">Failed rows</th>
                  <th scope="col">Duration</th>
                </tr>
              </thead>
              <tbody>
                ${rows}
              </tbody>
            </table>
          </div>`
    }
    ${next !== undefined ? html`<p><a href="${BASE}?before=${next}">Older sends</a></p>` : ''}`
  return layout('Sends', body, { signedIn: true })
}

function summaryList(title: string, counts: Record<string, number>, labels: Record<string, string> = {}): Html {
  const entries = Object.entries(counts).filter(([, n]) => n > 0)
  if (entries.length === 0) return html``
  return html`<dt>${title}</dt>
    <dd>${entries.map(([name, n], i) => html`${i > 0 ? ', ' : ''}${labels[name] ?? name}: ${formatCount(n)}`)}</dd>`
}

function select(
  name: string,
  label: string,
  options: readonly string[],
  selected: string | undefined,
  labels: Record<string, string> = {},
): Html {
  return html`<div>
    <label for="f-${name}">${label}</label>
    <select id="f-${name}" name="${name}">
      <option value="">All</option>
      ${options.map((o) => html`<option value="${o}" ${o === selected ? html`selected` : ''}>${labels[o] ?? o}</option>`)}
    </select>
  </div>`
}

function identityText(identity: Record<string, string> | undefined): Html {
  if (!identity) return html`<span class="muted">—</span>`
  return html`${Object.entries(identity).map(([k, v], i) => html`${i > 0 ? html`<br />` : ''}<span class="mono">${k}</span> = ${v}`)}`
}

export interface SendPageInput {
  send: SendRecord
  summary: FailureSummary | undefined
  failures: readonly StoredFailure[]
  /** Failures matching the filter (all pages). */
  matching: number
  filter: FailureFilter
  filterError: string | undefined
  page: number
  pageSize: number
  detailsKept: boolean
  dryRun: DryRunReport | undefined
  now?: number
}

export function sendPage(input: SendPageInput): string {
  const { send, summary, failures, filter } = input
  const now = input.now ?? Date.now()
  const live = isLive(send)
  const csv = `${BASE}/sends/${send.sendId}/failures.csv${filterQuery(filter)}`
  const pages = Math.max(1, Math.ceil(input.matching / input.pageSize))
  const pageLink = (page: number) => {
    const query = filterQuery(filter)
    return `${BASE}/sends/${send.sendId}${query}${query ? '&' : '?'}page=${page}`
  }
  const rows = failures.map(
    (f) =>
      html`<tr>
        <td class="num">${f.row}</td>
        <td>${STAGE_LABELS[f.stage] ?? f.stage}</td>
        <td>${f.destination}</td>
        <td><code>${f.code}</code></td>
        <td>${f.reason ?? html`<span class="muted">not readable (sealed under another SEND_HISTORY_SECRET)</span>`}</td>
        <td>${identityText(f.identity)}</td>
        <td>${f.messageId ? html`<code>${f.messageId}</code>` : html`<span class="muted">—</span>`}</td>
        <td>${time(f.at)}</td>
      </tr>`,
  )
  const body = html`<h1>Send <code>${send.sendId}</code></h1>
    <p id="live-status" class="muted" aria-live="polite">
      ${live ? html`This send is still running or delivering. <a href="${BASE}/sends/${send.sendId}">Reload</a> for the latest counts.` : ''}
    </p>
    <section id="send-facts" data-live ${live ? html`data-running` : ''} aria-labelledby="facts-title">
      <h2 id="facts-title">Summary</h2>
      <dl class="facts">
        <dt>Status</dt>
        <dd>${statusCell(send)}</dd>
        <dt>Started</dt>
        <dd>${time(send.startedAt)}</dd>
        <dt>Finished</dt>
        <dd>${time(send.finishedAt)}</dd>
        <dt>Duration</dt>
        <dd>${duration(send, now)}</dd>
        <dt>Look / schedule</dt>
        <dd>${lookAndPlan(send)}</dd>
        <dt>Action</dt>
        <dd>${send.action} (destination ${send.destination})</dd>
        <dt>Connection</dt>
        <dd>${send.connection}</dd>
        <dt>At the ingress</dt>
        <dd>
          ${formatCount(send.received)} received, ${formatCount(send.accepted)} accepted, ${formatCount(send.rejected)}
          rejected
        </dd>
        ${
          send.skippedUnchanged === undefined
            ? ''
            : html`<dt>Skipped as unchanged</dt>
                <dd>
                  ${formatCount(send.skippedUnchanged)} rows unchanged since the schedule's last run (changed rows only)
                </dd>`
        }
        <dt>At ${send.destination}</dt>
        <dd>
          ${formatCount(send.delivered ?? 0)} delivered, ${formatCount(send.failed ?? 0)} failed and retried,
          ${formatCount(send.deadLettered ?? 0)} dead-lettered${deliveredBefore(send)} ${deliveryProgress(send)}
        </dd>
        ${
          send.message
            ? html`<dt>Message to Looker</dt>
                <dd>${send.message}</dd>`
            : ''
        }
        ${summary ? summaryList('Failed rows by stage', summary.byStage, STAGE_LABELS) : ''}
        ${summary ? summaryList('Failed rows by code', summary.byCode) : ''}
      </dl>
    </section>
    ${send.mode === 'dry_run' ? dryRunSection(input.dryRun) : ''}
    <section aria-labelledby="failures-title">
      <h2 id="failures-title">Rows that did not make it</h2>
      ${
        !input.detailsKept
          ? html`<p>Row details are not kept: the ingress runs without <code>SEND_HISTORY_SECRET</code>.</p>`
          : !summary || summary.total === 0
            ? html`<p>No failed rows recorded for this send.</p>`
            : html`<p>
                  ${formatCount(summary.total)} failed rows
                  recorded${
                    summary.stored < summary.total
                      ? html`; the first ${formatCount(summary.stored)} are kept with their details, the rest are
                        counted only`
                      : ''
                  }.
                </p>
                <form
                  class="filters"
                  method="get"
                  action="${BASE}/sends/${send.sendId}"
                  role="search"
                  aria-label="Filter failed rows"
                >
                  ${select('stage', 'Stage', FAILURE_STAGES, filter.stage, STAGE_LABELS)}
                  ${select('destination', 'Destination', Object.keys(summary.byDestination), filter.destination)}
                  ${select('code', 'Code', Object.keys(summary.byCode), filter.code)}
                  <div>
                    <label for="f-q">Row, reason or identity contains</label
                    ><input id="f-q" name="q" type="search" value="${filter.text ?? ''}" maxlength="200" />
                  </div>
                  <div><button type="submit">Filter</button></div>
                </form>
                ${input.filterError ? html`<p class="error" role="alert">${input.filterError}</p>` : ''}
                <p><a href="${csv}" download>Download these rows as CSV</a> (${formatCount(input.matching)} rows)</p>
                ${
                  failures.length === 0
                    ? html`<p>No kept row matches the filter.</p>`
                    : html`<div class="scroll" role="region" aria-label="Failed rows" tabindex="0">
                        <table id="failures">
                          <caption>
                            Failed rows
                            ${input.page * input.pageSize + 1}–${input.page * input.pageSize + failures.length} of
                            ${formatCount(input.matching)} matching
                          </caption>
                          <thead>
                            <tr>
                              <th scope="col" class="num">Row</th>
                              <th scope="col">Stage</th>
                              <th scope="col">Destination</th>
                              <th scope="col">Code</th>
                              <th scope="col">Reason</th>
                              <th scope="col">Identity</th>
                              <th scope="col">Message id</th>
                              <th scope="col">At</th>
                            </tr>
                          </thead>
                          <tbody>
                            ${rows}
                          </tbody>
                        </table>
                        ${
                          pages > 1
                            ? html`<nav aria-label="Pages of failed rows">
                                <p>
                                  Page ${input.page + 1} of ${pages}.
                                  ${input.page > 0 ? html`<a href="${pageLink(input.page - 1)}">Previous</a>` : ''}
                                  ${input.page + 1 < pages ? html`<a href="${pageLink(input.page + 1)}">Next</a>` : ''}
                                </p>
                              </nav>`
                            : ''
                        }
                      </div>`
                }`
      }
    </section>`
  return layout(`Send ${send.sendId}`, body, { signedIn: true })
}

function dryRunSection(report: DryRunReport | undefined): Html {
  if (!report) {
    return html`<section aria-labelledby="dry-run-title">
      <h2 id="dry-run-title">Dry run</h2>
      <p>
        Nothing was sent. The report is not readable (expired, or sealed under another
        <code>SEND_HISTORY_SECRET</code>).
      </p>
    </section>`
  }
  return html`<section aria-labelledby="dry-run-title">
    <h2 id="dry-run-title">Dry run: nothing was sent</h2>
    <dl class="facts">
      <dt>Checked</dt>
      <dd>${report.checks.join(', ')}</dd>
      ${
        report.notChecked === undefined
          ? ''
          : html`<dt>Not checked</dt>
              <dd>${report.notChecked}</dd>`
      }
      <dt>Messages that would be produced</dt>
      <dd>${formatCount(report.messages)}</dd>
      <dt>Accepted rows the destination would refuse</dt>
      <dd>${formatCount(report.refusedRows)}</dd>
    </dl>
    <h3>Sample payloads</h3>
    ${report.samples.length === 0 ? html`<p>No row would be sent.</p>` : report.samples.map((sample, i) => html`<pre tabindex="0" aria-label="Sample payload ${i + 1}">${sample}</pre>`)}
  </section>`
}

export function messagePage(title: string, message: string, signedIn: boolean): string {
  return layout(
    title,
    html`<h1>${title}</h1>
      <p>${message}</p>
      <p><a href="${BASE}">All sends</a></p>`,
    { signedIn },
  )
}
