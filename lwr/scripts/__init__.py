"""Small privileged helpers for ``queued_external_drmaa``, meant to be allowed in sudoers.

Each is run as ``python -I -m lwr.scripts.NAME`` (``-I`` so neither the caller's environment nor
the current directory can change what Python imports): ``drmaa_launch`` and ``drmaa_kill`` run as
the job's user and read a JSON request on stdin; ``chown_working_directory USER PATH`` runs as
root. See docs/managers/drmaa.md for the sudoers lines.
"""
