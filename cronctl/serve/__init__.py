"""`cronctl serve`: the scheduler (SPEC section 5).

`plan` holds the pure decisions, `loop` the Scheduler, `daemon` the wiring (lock, database,
signals, systemd); `daemon.serve(locations)` runs it.
"""
