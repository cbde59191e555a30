"""The dashboard: server-rendered pages under ``/ui/`` for service users and the admin.

A new face on the same job life cycle (docs/service.md, "Dashboard"): pages translate forms into
the very setup, upload and submit calls the API answers, so plan limits, namespaces and states
are the API's. Kept import-light: ``lwr.config`` imports :mod:`lwr.ui.tools`.
"""
