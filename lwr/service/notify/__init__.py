"""Completion notifications: a job's owner is told once, by email and/or webhook, when it ends.

* :mod:`~lwr.service.notify.settings`: the ``smtp_*``, ``public_url`` and ``notify_*`` options.
* :mod:`~lwr.service.notify.outbox`: each user's channels and the durable outbox of
  notifications, both in the job store's database; a row is written in the same transaction as
  the job's final state (:meth:`~lwr.persistence.store.JobStore.put`'s final hook).
* :mod:`~lwr.service.notify.smtp` and :mod:`~lwr.service.notify.webhook`: one delivery each.
* :mod:`~lwr.service.notify.sender`: the thread that delivers pending rows, retries with
  exponential back-off and marks them sent or failed.
"""
