"""The runner: the only part of cronctl that starts processes.

`process` supervises one process group, `capture` bounds its output, `execute` turns a task
into recorded attempts (the Executor), `environment` is what a job inherits.

Nothing is re-exported here: importing one module of the runner (`capture` for
`--json`'s output fields) must not load the process machinery.
"""
