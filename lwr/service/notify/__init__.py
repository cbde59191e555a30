"""Completion notifications: a job's owner is told once, by email and/or webhook, when it ends.

* :mod:`~lwr.service.notify.settings`: the ``smtp_*``, ``public_url`` and ``notify_*`` options.
* :mod:`~lwr.service.notify.outbox`: each user's channels and the durable outbox of
  notifications, both in the job store's database; a row is written in the same transaction as
  the job's final state (:meth:`~lwr.persistence.store.JobStore.put`'s final hook).
* :mod:`~lwr.service.notify.smtp` and :mod:`~lwr.service.notify.webhook`: one delivery each.
* :mod:`~lwr.service.notify.sender`: the thread that delivers pending rows, retries with
  exponential back-off, marks them sent or failed, and prunes old ones (``notify_keep_days``).
* :mod:`~lwr.egress`: where a webhook may go (no internal address unless the
  operator allows its network), judged at registration and before every connection.
* :mod:`~lwr.service.notify.show`: a user's channels as ``lwr users show`` prints them.
"""
