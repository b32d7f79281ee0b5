// Prints one plain closing line after jest's own summary, `tests: N passed, N failed,
// N skipped`, so a CI that reads only the last lines of a run sees how many tests ran
// without having to know jest's format.
export default class SummaryLineReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests
    process.stdout.write(`tests: ${results.numPassedTests} passed, `
      + `${results.numFailedTests} failed, ${skipped} skipped\n`)
  }
}
