"""``user_auth``: who submitted a job, and may they run it here (Pulsar's plugins, checked).

* :mod:`lwr.auth.settings` validates the configuration (called by :mod:`lwr.config`);
* :mod:`lwr.auth.checker` runs a job through the plugins when it is submitted;
* :mod:`lwr.auth.oidc`, :mod:`lwr.auth.simple` are the plugins, found through
  :mod:`lwr.registry` by the type names Pulsar's configuration uses.

This package imports nothing at package level, so :mod:`lwr.config` can import the settings
module without pulling the plugins (and PyJWT) in before a plugin is configured.
"""
