"""The harness's built-in suites: workload content built on the public ``harness`` API."""
