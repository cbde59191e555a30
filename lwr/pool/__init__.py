"""The worker side of the elastic pool: several LWR processes sharing one manager's queues."""
