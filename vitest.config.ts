import { readdirSync, existsSync } from 'node:fs'
import { defineConfig } from 'vitest/config'

// One Vitest project per workspace folder that has tests. Workspace packages resolve to their
// TypeScript sources through the "@lookstream/source" export condition, so tests never need a build.
const conditions = ['@lookstream/source', 'node', 'import', 'default']
const folders = ['packages', 'services'].flatMap((top) => readdirSync(top).map((name) => `${top}/${name}`))
const projects = [...folders, 'test']
  .filter((dir) => existsSync(`${dir}/test`) || dir === 'test')
  .map((dir) => ({
    extends: true as const,
    test: {
      name: dir === 'test' ? 'e2e' : dir.split('/')[1],
      root: dir,
      include: dir === 'test' ? ['**/*.test.ts'] : ['test/**/*.test.ts'],
      exclude: ['**/node_modules/**', '**/dist/**'],
    },
  }))

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    projects,
    globalSetup: [new URL('./packages/testing/src/global-setup.ts', import.meta.url).pathname],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    restoreMocks: true,
    unstubEnvs: true,
    silent: 'passed-only',
  },
})
