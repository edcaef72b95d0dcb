"""Notifications of runs (README, "Notifications"): which event a run triggers
(`rules`), the message (`message`), the channels (`channels`), and the `Notifier` (`notifier`),
the run listener that serve and `run-now` attach to the Executor.

Nothing is re-exported here: `status` imports `cronctl.notify.rules`, and importing this
package must not load the channels' smtplib, urllib and ssl.
"""
