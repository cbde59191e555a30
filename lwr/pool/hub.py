"""The pool worker's one long-lived supervisor (the *hub*): it starts every job of the worker.

Started once per worker (``python -I -S``, see :mod:`lwr.pool.hub_client`), instead of one
interpreter per job, which cost about 20 ms of CPU per job. For each job the worker sends a
request over a socket pair (argv, directory, environment; the job's stdout and stderr files as
descriptors, ``SCM_RIGHTS``); the hub ``fork``\\ s a per-job supervisor, a copy of itself that
runs :func:`lwr.pool.supervise.supervise` (nothing to start or import: a fork of this small
process) and answers the worker with the per-job supervisor's pid and a *pidfd* of it (opened
while it is the hub's unreaped child, so never another process's). When a per-job supervisor
ends, the hub reaps it and sends its wait status.

Why a forked per-job supervisor and not the hub itself as every job's subreaper: a process that
leaves its job (``setsid`` in a subshell that exits) is re-parented to the nearest subreaper,
and with one subreaper for all jobs nothing would tell whose it was (its session and group are
its own; a cgroup per job needs root or a delegated subtree). A per-job subreaper makes the
kernel do the attribution: a job's leftovers are the descendants of its own supervisor, and
ending them never touches another job's processes.

Every guarantee of the per-job supervisor holds, and one more:

* the worker's **lifeline** (its pipe, see :mod:`lwr.pool.tether`) is watched by the hub and by
  every per-job supervisor: a dead worker's jobs are killed, whole trees, as before;
* the **hub's own lifeline**, a pipe whose write end only the hub holds (each forked supervisor
  closes its copy at once), is watched by every per-job supervisor: a hub that dies, however it
  dies, takes every job with it; the worker sees the socket close and gives up all its leases;
* a per-job supervisor killed outright (the OOM killer) leaves its job's processes to the hub,
  the subreaper above it; the hub then kills every process that is not under a live per-job
  supervisor: they can only be such leftovers;
* a hub that stops answering (stopped, stuck, deadlocked) is killed by the worker, which
  treats it as dead: it answers each request, and a ``ping`` while jobs run, within a time
  limit (see :data:`lwr.pool.hub_client.HUB_TIMEOUT`).

Runs without site packages and imports built-in modules only (``marshal`` for the messages,
``_socket`` rather than ``socket``, whose ``enum`` import costs more than the rest).
"""

from __future__ import annotations

import _socket
import errno
import marshal
import os
import select
import sys

TYPE_CHECKING = False  # not from ``typing``: see supervise.py
if TYPE_CHECKING:
    import signal
    from typing import Any

    from lwr.pool import supervise
else:
    import _signal as signal

    if __package__:  # imported as lwr.pool.hub (the tests)
        from lwr.pool import supervise
    else:  # the hub process: this directory on sys.path, no package
        import supervise

#: the largest request (argv and environment) the hub reads
MAX_MESSAGE = 1 << 20
_INT = 4  # bytes of a descriptor in an SCM_RIGHTS array


def send(sock: Any, message: dict[str, Any], fds: list[int] | None = None, flags: int = 0) -> None:
    """One message (and descriptors) on the SOCK_SEQPACKET socket (``flags``: sendmsg's)."""
    data = marshal.dumps(message)
    if len(data) > MAX_MESSAGE:  # the other side would read it cut short
        raise OSError(errno.E2BIG, f"a message of {len(data)} bytes is over {MAX_MESSAGE}")
    ancillary = []
    if fds:
        array = b"".join(fd.to_bytes(_INT, sys.byteorder) for fd in fds)
        ancillary = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array)]
    sock.sendmsg([data], ancillary, flags)


def receive(sock: Any, max_fds: int) -> tuple[dict[str, Any] | None, list[int]]:
    """The next message and the descriptors it carried; (None, []) at end of file."""
    data, ancillary, flags, _ = sock.recvmsg(MAX_MESSAGE, _socket.CMSG_SPACE(max_fds * _INT))
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % _INT
            fds.extend(
                int.from_bytes(payload[i : i + _INT], sys.byteorder) for i in range(0, usable, _INT)
            )
    if not data:
        return None, fds
    if flags & (_socket.MSG_TRUNC | _socket.MSG_CTRUNC):
        return {"kind": "truncated"}, fds
    return marshal.loads(data), fds


class Hub:
    """The hub's state: its socket, its lifeline, the per-job supervisors it started."""

    def __init__(self, lifeline: int, sock_fd: int) -> None:
        os.set_inheritable(lifeline, False)
        os.set_inheritable(sock_fd, False)
        self.lifeline = lifeline
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, sock_fd)
        self.own_read, self.own_write = os.pipe()  # the hub's lifeline
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)
        #: pid of each live per-job supervisor
        self.jobs: set[int] = set()

    def run(self) -> int:
        subreaper = supervise.become_subreaper()
        signal.set_wakeup_fd(self.wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        send(self.sock, {"kind": "hello", "pid": os.getpid(), "subreaper": subreaper})
        while True:
            readable, _, _ = select.select(
                [self.lifeline, self.sock.fileno(), self.wake_read], [], []
            )
            if self.lifeline in readable and os.read(self.lifeline, 64) == b"":
                supervise.kill_everything()  # the worker is gone: every job's tree, then us
            if self.wake_read in readable:
                try:
                    os.read(self.wake_read, 512)
                except BlockingIOError:
                    pass
            if self.reap():
                self.kill_strays()
            if self.sock.fileno() in readable:
                self.request()

    def request(self) -> None:
        try:
            message, fds = receive(self.sock, 2)
        except OSError:
            message, fds = None, []
        if message is None:  # the worker closed its end: it is exiting, or gone
            supervise.kill_everything()
        assert message is not None
        try:
            if message.get("kind") == "spawn" and len(fds) == 2:
                self.spawn(message, fds[0], fds[1])
            elif message.get("kind") == "ping":  # the worker checks that we still answer
                send(self.sock, {"kind": "pong", "id": message.get("id")})
            else:
                reply = {"kind": "failed", "id": message.get("id"), "errno": errno.EINVAL}
                send(self.sock, {**reply, "error": f"bad request {message.get('kind')}"})
        finally:
            for fd in fds:
                os.close(fd)

    def spawn(self, message: dict[str, Any], out: int, err: int) -> None:
        """Fork the job's supervisor; answer its pid and a pidfd, or why it could not start."""
        try:
            directory = os.open(message["cwd"], os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            self.failed(message, exc)
            return
        try:
            pid = os.fork()
            if pid == 0:
                self.child(message, directory, out, err)  # never returns
        except OSError as exc:
            self.failed(message, exc)
            return
        finally:
            os.close(directory)
        try:
            pidfd = os.pidfd_open(pid)  # our unreaped child: this pid is that process
        except OSError as exc:  # (out of descriptors) the worker could not watch it: undo it
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            self.kill_strays()  # the job, if it had started already
            self.failed(message, exc)
            return
        self.jobs.add(pid)
        try:
            send(self.sock, {"kind": "started", "id": message["id"], "pid": pid}, [pidfd])
        except OSError:
            supervise.kill_everything()  # the worker cannot hear us: it is gone
        finally:
            os.close(pidfd)

    def failed(self, message: dict[str, Any], exc: OSError) -> None:
        reply = {"kind": "failed", "id": message.get("id"), "errno": exc.errno or 0}
        send(self.sock, {**reply, "error": exc.strerror or str(exc), "filename": exc.filename})

    def child(self, message: dict[str, Any], directory: int, out: int, err: int) -> None:
        """In the forked per-job supervisor: a session of its own, the job's streams, supervise."""
        code = 70
        try:
            signal.set_wakeup_fd(-1)
            for fd in (self.sock.fileno(), self.own_write, self.wake_read, self.wake_write):
                os.close(fd)
            os.setsid()
            os.fchdir(directory)
            stdin = os.open(os.devnull, os.O_RDONLY)
            for source, target in ((stdin, 0), (out, 1), (err, 2)):
                os.dup2(source, target)  # inheritable: the job's streams
            for fd in (stdin, out, err, directory):
                os.close(fd)
            os.environ.clear()  # the worker's environment of now (PATH is searched in it too)
            os.environ.update(message["env"])
            code = supervise.supervise([self.lifeline, self.own_read], message["argv"])
        except BaseException as exc:  # nothing may return into the hub's loop
            try:
                os.write(2, f"lwr job supervisor: {type(exc).__name__}: {exc}\n".encode())
            except OSError:
                pass
        finally:
            os._exit(code)

    def reap(self) -> bool:
        """Collect ended children and tell the worker of its jobs'; whether one was killed."""
        orphaned = False
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid in self.jobs:
                self.jobs.discard(pid)
                orphaned = orphaned or os.WIFSIGNALED(status)
                try:
                    send(self.sock, {"kind": "exit", "pid": pid, "status": status})
                except OSError:
                    supervise.kill_everything()
        return orphaned

    def kill_strays(self) -> None:
        """SIGKILL every descendant that is not under a live per-job supervisor, until none.

        A per-job supervisor that ended normally left nothing behind (it ended its job's
        leftovers first); one killed outright left its job's processes to us. Those, and only
        those, are our descendants outside every live per-job supervisor's tree.
        """
        for _ in range(100):
            children = supervise.children_map()
            strays: list[int] = []
            todo = [pid for pid in children.get(os.getpid(), ()) if pid not in self.jobs]
            while todo:
                pid = todo.pop()
                strays.append(pid)
                todo.extend(children.get(pid, ()))
            if not strays:
                return
            supervise.signal_all(strays, signal.SIGKILL)
            self.reap()


def main(args: list[str]) -> int:
    if len(args) != 2:
        os.write(2, b"usage: hub.py LIFELINE_FD SOCKET_FD\n")
        return 2
    return Hub(int(args[0]), int(args[1])).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
