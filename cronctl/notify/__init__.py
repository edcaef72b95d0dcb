"""Notifications of runs (README.md#when-a-notification-is-sent): which event a run triggers
(`rules`), the message (`message`), the channels (`channels`: the registry over
`local_channels` and `http_channels`), the per-task lanes and their workers (`lanes`), the
notifier's own history connection (`history_link`), and the `Notifier` (`notifier`), the run
listener that serve and `run-now` attach to the Executor.

Nothing is re-exported here: `status` imports `cronctl.notify.rules`, and importing this
package must not load the channels' smtplib, urllib and ssl.
"""
