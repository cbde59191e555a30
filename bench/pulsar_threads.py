"""``pulsar-serve`` with another number of gunicorn threads: the bench's same-threads comparison.

Run by Pulsar's own interpreter (``bench/.venvs/pulsar/bin/python bench/pulsar_threads.py N
server.ini``). Pulsar 0.16's ``pulsar-serve`` hard-codes gunicorn's options (one worker, four
``gthread`` threads) and reads no gunicorn setting from its configuration or the environment, so
this sets ``threads`` after its options are loaded and otherwise runs ``pulsar-serve`` unchanged.
"""

import sys

from gunicorn.app.base import BaseApplication


def main() -> int:
    threads = int(sys.argv.pop(1))
    loaded = BaseApplication.do_load_config

    def do_load_config(self: BaseApplication) -> None:
        loaded(self)
        self.cfg.set("threads", threads)

    BaseApplication.do_load_config = do_load_config  # type: ignore[method-assign]
    from pulsar.scripts.serve import main as serve

    sys.argv[0] = "pulsar-serve"
    return int(serve() or 0)


if __name__ == "__main__":
    sys.exit(main())
