"""The balancer: sizes a pool of LWR workers from a load table (``lwr balancer``).

``loadtable`` and ``policy`` are pure (load in, desired pool out); ``drivers`` start and stop
workers (local processes, EC2 spot instances); ``daemon`` ties them to the broker the workers
report to. See docs/elastic.md.
"""
