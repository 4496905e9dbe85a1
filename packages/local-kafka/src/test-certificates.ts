import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface TestCertificates {
  dir: string
  /** CA that signed the server and client certificates. */
  caFile: string
  /** Server certificate for 127.0.0.1 and localhost, and its key. */
  serverCertFile: string
  serverKeyFile: string
  /** Client certificate (CN lookstream-test-client) for mutual TLS, and its key. */
  clientCertFile: string
  clientKeyFile: string
  /** A CA that signed nothing here: trusting only it must make the handshake fail. */
  otherCaFile: string
  remove(): void
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 })
}

function ca(dir: string, name: string): void {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`], dir)
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      `${name}.key`,
      '-sha256',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-out',
      `${name}.pem`,
    ],
    dir,
  )
}

function leaf(dir: string, name: string, subject: string, extensions: string): void {
  writeFileSync(join(dir, `${name}.ext`), extensions)
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.ec.key`], dir)
  // PKCS#8 ("BEGIN PRIVATE KEY"), the form Node, Redis and librdkafka all read.
  openssl(['pkcs8', '-topk8', '-nocrypt', '-in', `${name}.ec.key`, '-out', `${name}.key`], dir)
  openssl(['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`], dir)
  openssl(
    // prettier-ignore
    ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
      '-days', '2', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.pem`],
    dir,
  )
}

/**
 * Generates a throwaway CA with a server and a client certificate (EC P-256, valid two days) in a new
 * temporary directory, with the openssl command line tool. Nothing here is ever checked in.
 */
export function createTestCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'lookstream-certs-'))
  try {
    ca(dir, 'ca')
    ca(dir, 'other-ca')
    leaf(
      dir,
      'server',
      '/CN=127.0.0.1',
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n',
    )
    leaf(dir, 'client', '/CN=lookstream-test-client', 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n')
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim()
    throw new Error(`openssl could not generate test certificates${stderr ? `: ${stderr}` : ''}`, { cause: err })
  }
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    serverCertFile: join(dir, 'server.pem'),
    serverKeyFile: join(dir, 'server.key'),
    clientCertFile: join(dir, 'client.pem'),
    clientKeyFile: join(dir, 'client.key'),
    otherCaFile: join(dir, 'other-ca.pem'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}
