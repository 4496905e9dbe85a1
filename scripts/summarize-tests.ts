// Prints the closing line CI reads ("N passed, N failed[, N skipped]") from vitest's JSON report,
// counting a failed lint/typecheck step and a vitest run that produced no report as failures.
import { existsSync, readFileSync } from 'node:fs'

const [reportPath = '', stepStatus = '0', vitestStatus = '0'] = process.argv.slice(2)

interface Report {
  numPassedTests: number
  numFailedTests: number
  numPendingTests: number
  numTodoTests: number
  testResults: { name: string; status: string; assertionResults: { status: string }[] }[]
}

let passed = 0
let failed = 0
let skipped = 0
if (existsSync(reportPath)) {
  const report = JSON.parse(readFileSync(reportPath, 'utf8')) as Report
  passed = report.numPassedTests
  // numFailedTestSuites also counts every describe block around a failed test; count instead the
  // files that failed without a failed test (an import error, a failing beforeAll/afterAll hook).
  const brokenFiles = report.testResults.filter(
    (file) => file.status === 'failed' && !file.assertionResults.some((test) => test.status === 'failed'),
  )
  for (const file of brokenFiles) console.error(`failed outside any test: ${file.name}`)
  failed = report.numFailedTests + brokenFiles.length
  skipped = report.numPendingTests + report.numTodoTests
} else {
  console.error(`no vitest report at ${reportPath}`)
  failed += 1
}
if (stepStatus !== '0') {
  console.error('lint, format, typecheck or schema check failed: counted as one failure')
  failed += 1
}
if (vitestStatus !== '0' && failed === 0) {
  console.error(`vitest exited with ${vitestStatus} although no test failed: counted as one failure`)
  failed += 1
}
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`)
process.exit(failed > 0 ? 1 : 0)
