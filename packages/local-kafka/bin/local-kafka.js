#!/usr/bin/env node
// Runs the broker CLI from its TypeScript source (Node >= 24 strips types natively).
await import('../src/cli.ts')
