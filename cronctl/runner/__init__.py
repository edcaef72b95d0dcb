"""The runner: the only part of cronctl that starts processes.

`process` supervises one process group, `capture` bounds its output, `execute` turns a task
into recorded attempts (the Executor), `environment` is what a job inherits.

Nothing is re-exported here: `status` and `logs` import `cronctl.runner.capture` for
`safe_text`, and importing this package must not load the process machinery.
"""
