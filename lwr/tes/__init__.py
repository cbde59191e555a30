"""The GA4GH Task Execution Service (TES 1.1) face of LWR.

A TES task is an ordinary LWR job: the routes here translate a task document into a job record
(:mod:`lwr.tes.service`), its inputs and outputs into server-side staging (:mod:`lwr.tes.staging`)
and its executors into one command line (:mod:`lwr.tes.command`); the job then moves through the
same manager, staging threads and store as a Galaxy job, and is read back as a task
(:mod:`lwr.tes.views`) with its state mapped by a pure function (:mod:`lwr.tes.states`).
"""
