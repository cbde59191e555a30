"""The files ``lwr config`` writes, as ``string.Template`` texts (a missing key is an error)."""

from __future__ import annotations

from string import Template

SERVER_INI = Template("""\
# LWR server configuration written by `lwr config`. Start the server from this directory with
#     lwr serve
# (or `paster serve server.ini`). The application's options live in app.yml, Pulsar's layout.

[server:main]
use = egg:lwr#${runner}
${server_options}
[app:main]
use = egg:lwr
app_config = %(here)s/app.yml

[loggers]
keys = root, lwr, access

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[logger_lwr]
level = INFO
handlers =
qualname = lwr

[logger_access]
# INFO logs one line per request (the private token is always redacted).
level = WARNING
handlers =
qualname = lwr.access

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s][%(threadName)s] %(message)s
""")

HTTP_SERVER_OPTIONS = Template("""\
# host = 0.0.0.0 listens on every interface; serve HTTPS (ssl_pem in app.yml) when you do.
host = ${host}
port = ${port}
threads = 16
""")

APP_YML = Template("""\
---
# LWR application options (the keys of Pulsar's app.yml; see docs/pulsar.md for what LWR
# implements). Relative paths are relative to this directory.

# Clients (Galaxy's private_token) must send this secret. Keep this file private (mode 0600).
private_token: ${private_token}

staging_directory: files/staging
persistence_directory: files/persisted_data
tool_dependency_dir: dependencies
${mq_options}
managers:
  _default_:
    type: ${manager_type}
    num_concurrent_jobs: 1
""")

MQ_OPTIONS = Template("""\

# Galaxy reaches this server through the message queue.
message_queue_url: "${amqp_url}"
${key_prefix_line}# A message-queue client never asks to clean a finished job: keep one a week.
finished_job_retention: 604800
""")

LOCAL_ENV = Template("""\
# Sourced before LWR starts (by the systemd unit and the supervisor program): put the
# environment jobs and managers need here.

# DRMAA managers need the path of the scheduler's libdrmaa.
${libdrmaa_line}

# Tools that import Galaxy's own code (remote metadata) need a Galaxy checkout.
#export GALAXY_HOME=/path/to/galaxy
""")

SYSTEMD_UNIT = Template("""\
# systemd unit for the LWR server in ${directory}. Install with
#     cp ${directory}/lwr.service /etc/systemd/system/ && systemctl enable --now lwr
[Unit]
Description=LWR, the Lightweight Runner (${directory})
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=${user}
WorkingDirectory=${directory}
ExecStart=${command}
KillSignal=SIGTERM
TimeoutStopSec=60
Restart=on-failure

[Install]
WantedBy=multi-user.target
""")

SUPERVISOR_PROGRAM = Template("""\
; supervisord program for the LWR server in ${directory}; include it from supervisord.conf.
[program:lwr]
user = ${user}
directory = ${directory}
command = ${command}
stopsignal = TERM
stopwaitsecs = 60
redirect_stderr = true
autorestart = true
""")

JOB_CONF_REST = Template("""\
# Galaxy's job_conf.yml: send jobs to this LWR server (it speaks Pulsar's protocol).
runners:
  pulsar_rest:
    load: galaxy.jobs.runners.pulsar:PulsarRESTJobRunner
execution:
  default: lwr
  environments:
    lwr:
      runner: pulsar_rest
      url: ${url}
      private_token: ${private_token}
      default_file_action: transfer
""")

JOB_CONF_MQ = Template("""\
# Galaxy's job_conf.yml: send jobs to this LWR server over the message queue.
runners:
  pulsar_mq:
    load: galaxy.jobs.runners.pulsar:PulsarMQJobRunner
    amqp_url: ${amqp_url}
${key_prefix_line}    # the URL LWR uses to fetch inputs from Galaxy and send outputs back
    galaxy_url: http://galaxy.example.org
execution:
  default: lwr
  environments:
    lwr:
      runner: pulsar_mq
      jobs_directory: ${jobs_directory}
      default_file_action: remote_transfer
""")
