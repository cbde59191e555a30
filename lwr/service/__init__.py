"""LWR as a shared job service: users with their own tokens, plans with quotas, job listings.

* :mod:`lwr.service.plans`: plans and their limits, parsed from the configuration; pure checks.
* :mod:`lwr.service.store`: the users table, in the job store's database.
* :mod:`lwr.service.users`: :class:`~lwr.service.users.Users`, what the web layer, the admin
  command and later faces (dashboard, notifications, retention) call.
* :mod:`lwr.service.listing`: job listings (newest first, filtered, paged) as JSON-able dicts.
* :mod:`lwr.service.admin`: ``lwr users ...``, the admin command.
* :mod:`lwr.service.notify`: completion notifications (email, signed webhooks) from a durable
  outbox written with each job's final state.
* :mod:`lwr.service.retention`: results archived after the plan's retention time, restored on
  upgrade.
"""
