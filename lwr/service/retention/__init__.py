"""Retention: a service user's finished job keeps its results "hot" for its plan's
``retention_minutes``; then they are archived into an archive store, and restored when the user
moves to a plan that keeps them.

* :mod:`~lwr.service.retention.policy`: the deadlines, pure functions of times and plans.
* :mod:`~lwr.service.retention.table`: the ``retention`` table (one row per job, and the durable
  work queue: a row with a ``task`` is work to do), in the job store's database.
* :mod:`~lwr.service.retention.stores`: where archives go (``directory``, ``s3``), by alias.
* :mod:`~lwr.service.retention.archive`: packing a job's results and putting them back.
* :mod:`~lwr.service.retention.intake`: what the inbox (the job store's hooks) says changed.
* :mod:`~lwr.service.retention.worker`: the thread that scans for due jobs and runs the queue.
* :mod:`~lwr.service.retention.settings`: the ``retention_*`` options.
"""
