import { request } from 'undici'

export interface HttpResult<T = unknown> {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: T
  text: string
}

export interface CallOptions {
  body?: unknown
  /** Sent as is instead of JSON-encoding `body`. */
  raw?: string | Buffer
  headers?: Record<string, string>
}

export async function call<T = unknown>(
  method: string,
  url: string,
  options: CallOptions = {},
): Promise<HttpResult<T>> {
  const hasBody = options.raw !== undefined || options.body !== undefined
  const response = await request(url, {
    method: method as 'GET',
    headers: { ...(hasBody ? { 'content-type': 'application/json' } : {}), ...options.headers },
    body: options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
  })
  const text = await response.body.text()
  let body: unknown = text
  if (text !== '') {
    try {
      body = JSON.parse(text)
    } catch {
      body = text
    }
  }
  return { status: response.statusCode, headers: response.headers, body: body as T, text }
}

export function basic(user: string, password = ''): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` }
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` }
}

export interface Page<T> {
  total: number
  evicted: number
  items: T[]
}

export async function admin<T = unknown>(baseUrl: string, path: string, method = 'GET', body?: unknown): Promise<T> {
  const result = await call<T>(method, `${baseUrl}/__admin${path}`, body === undefined ? {} : { body })
  if (result.status !== 200) throw new Error(`admin ${method} ${path} answered ${result.status}: ${result.text}`)
  return result.body
}
