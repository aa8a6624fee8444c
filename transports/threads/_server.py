"""Threaded server: the :mod:`transports.sockets` loop, plus threads for handler calls that block.

Why not a thread per connection (what this adapter used to be): with a synchronous handler
that returns at once, which is the common case, twenty connection threads on two cores spent
most of their time handing the GIL to each other (issue 6: ~60 context switches and ~170 futex
calls per message, 775 µs CPU per message against 109 µs for the one-thread loop, and a
throughput that changed threefold between server starts). And not a selector thread handing
every handler call to a worker pool either: that costs two thread hand-offs (~12 µs CPU here)
per handler call even when nothing blocks, three calls per message.

What this adapter does instead (the idea of Go's ``sysmon`` handing off a processor blocked in
a system call): one thread runs the event loop of :mod:`transports.sockets` and runs each
connection's *turn* (read, core, handler, reply) inline. A watchdog thread looks at the loop
now and then (see :attr:`Server.handoff_after`); when the same turn is still running at two
looks, that turn is blocked (an ``fsync`` into a Maildir, a database, a slow DNS lookup in a
policy hook) and the loop moves on without it: a new thread takes over the loop, the connection
is taken off the poller, and the old thread finishes that one turn (the handler call returns
when it returns) and gives the connection back to the loop. So

* a blocking handler in one session stalls the others for a bounded time (at most about 0.2 s
  the first time, about 10 ms while handlers keep blocking), never for the duration of the call;
* a connection's handler calls may run on different threads over its life, one at a time;
* a connection has at most one turn in flight, so its handler calls stay ordered, and its
  socket and TLS state are only ever used by one thread at a time;
* there are at most as many threads as connections blocked in a handler at the same moment,
  plus the loop and the watchdog (the connection limit bounds them);
* handler methods of different connections can run at the same time, as before: they must be
  thread-safe.

Everything else (timeouts, the connection limit, graceful shutdown, STARTTLS and implicit TLS
over ``ssl.MemoryBIO``, back-pressure) is the sockets loop's behaviour. A graceful shutdown
waits for the blocked turns (within its grace period); when the grace period ends, their
sockets are shut down and :meth:`Server.shutdown` returns once their handler calls have.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable

from ..sockets._server import Server as _LoopServer
from ..sockets._server import _Connection

__all__ = ["Server"]

logger = logging.getLogger("transports.server")


class _Demoted(BaseException):
    """Unwinds a thread whose blocked turn was handed off: it no longer runs the loop.

    A ``BaseException`` so that no ``except Exception`` on the way can swallow it.
    """


class Server(_LoopServer):
    """An SMTP/LMTP server whose blocking handler calls do not stall other sessions
    (RFC 5321, RFC 3207, RFC 2033).

    ::

        server = Server(MyHandler(), port=0)
        server.start()            # binds and serves in background threads
        ...                       # server.address
        server.shutdown()         # graceful; thread-safe
    """

    _adapter_name = "threads"

    #: Seconds between the watchdog's looks at the loop right after a turn blocked: a turn
    #: still running at two looks in a row is handed off to a thread of its own. While nothing
    #: blocks, the looks back off (each one costs the busy loop a GIL hand-over) to
    #: :attr:`handoff_after_max`; so a blocking handler stalls the other sessions for at most
    #: about twice that the first time, and twice :attr:`handoff_after` while handlers keep
    #: blocking. No looks at all while the server is idle.
    handoff_after = 0.005
    #: The longest interval between looks (see :attr:`handoff_after`).
    handoff_after_max = 0.1

    def _setup(self) -> None:
        super()._setup()
        self._lock = threading.Lock()
        #: The thread running the loop (None for a moment during a hand-off).
        self._leader: int | None = None
        self._leader_thread: threading.Thread | None = None
        #: The connection whose turn the loop thread is running, and a count of turns.
        self._in_turn: _Connection | None = None
        self._turns = 0
        #: Connections whose blocked turn the new loop thread must take off the poller.
        self._orphans: list[_Connection] = []
        #: Connections whose handed-off turn has ended, for the loop to take back.
        self._returned: list[_Connection] = []
        #: Threads finishing a handed-off turn (joined at the end of a shutdown).
        self._detached: set[threading.Thread] = set()
        self._server_threads: set[int] = set()
        self._loop_over = False
        self._watch_wake = threading.Event()
        self._watchdog_parked = False

    def start(self) -> None:
        """Bind, listen and start serving in background threads."""
        super().start()
        assert self._address is not None
        port = self._address[1]
        with self._lock:
            self._start_leader()
        threading.Thread(target=self._watch, name=f"esmtp-watchdog-{port}", daemon=True).start()

    def serve_forever(self) -> None:
        """Start if needed, then block until :meth:`shutdown` completes."""
        if self._listener is None:
            self.start()
        self._stopped.wait()

    def shutdown(self, timeout: float | None = 30.0) -> None:
        """Stop listening, let every transaction in flight finish (421 to anything after it),
        then wait up to ``timeout`` seconds for the connections and cut the rest. Thread-safe;
        from a handler it only requests the shutdown."""
        self.request_shutdown(timeout)
        if self._listener is not None and threading.get_ident() not in self._server_threads:
            self._stopped.wait()

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    # --- the loop thread --------------------------------------------------------------------------

    def _start_leader(self) -> None:
        """Start a thread that takes over the loop (the lock is held)."""
        port = self._address[1] if self._address is not None else 0
        thread = threading.Thread(target=self._lead, name=f"esmtp-loop-{port}", daemon=True)
        self._leader_thread = thread
        thread.start()

    def _lead(self) -> None:
        me = threading.get_ident()
        with self._lock:
            self._leader = me
            self._server_threads.add(me)
            orphans, self._orphans = self._orphans, []
        for connection in orphans:
            # Its turn runs on the thread that was running the loop: not ours to watch now.
            if connection.mask:
                connection.mask = 0
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self._poller.unregister(connection.sock)
        self._next_check = 0.0  # whatever the old thread was about to time out: look now
        try:
            self._run()
        except _Demoted:
            with self._lock:
                self._server_threads.discard(me)
                self._detached.discard(threading.current_thread())
            return
        except BaseException:
            logger.exception("server loop failed")
        self._end_loop()

    def _end_loop(self) -> None:
        """The loop is over (shutdown done or grace period over): cut what is left, stop."""
        with self._lock:
            self._loop_over = True
            returned, self._returned = self._returned, []
        self._watch_wake.set()
        for connection in returned:
            connection.away = False
        self._close_all()
        self._poller.close()
        while True:
            with self._lock:
                detached = [t for t in self._detached if t is not threading.current_thread()]
            if not detached:
                break
            for thread in detached:
                thread.join()
        self._close_sockets()
        self._server_threads.discard(threading.get_ident())
        self._stopped.set()

    def _close_all(self) -> None:
        for connection in list(self._connections):
            if connection.away:
                # Its handler call is still running on another thread, which closes it when the
                # call returns; cut the client now (the socket object stays that thread's).
                with contextlib.suppress(OSError):
                    connection.sock.shutdown(socket.SHUT_RDWR)
            else:
                self._close(connection)

    def _drain_wake(self, wake_reader: socket.socket) -> None:
        super()._drain_wake(wake_reader)
        with self._lock:
            returned, self._returned = self._returned, []
        for connection in returned:
            connection.away = False
            self._settle(connection)  # back on the poller (or closed)
        if returned:
            self._next_check = 0.0  # its turn may have set a deadline: look at them now

    # --- turns ------------------------------------------------------------------------------------

    def _turn(self, connection: _Connection, work: Callable[[_Connection], None]) -> None:
        """Run one turn where the watchdog can see it; if it was handed off meanwhile, give the
        connection back and leave the loop (:class:`_Demoted`)."""
        self._turns += 1
        self._in_turn = connection
        if self._watchdog_parked:
            self._watchdog_parked = False
            self._watch_wake.set()
        try:
            work(connection)
        except Exception:
            self._internal_error(connection)
        finally:
            # A hand-off clears the mark (and the connection, being away, gets no other turn):
            # if it is still ours, this thread still runs the loop. Plain acquire/release:
            # this runs on every turn.
            lock = self._lock
            lock.acquire()
            handed_off = self._in_turn is not connection
            over = self._loop_over
            if not handed_off:
                self._in_turn = None
            elif not over:
                self._returned.append(connection)
            lock.release()
        if handed_off:
            if over:
                self._close_detached(connection)
            else:
                self._wake()
            raise _Demoted

    def _close_detached(self, connection: _Connection) -> None:
        """A handed-off turn ended after the loop did: close the connection here."""
        if connection.closed:
            return
        connection.closed = True
        connection.sock.close()
        if connection.driver is not None:
            try:
                connection.driver.finish()
            except Exception:
                logger.exception("connection: internal error")

    # --- the watchdog -----------------------------------------------------------------------------

    def _watch(self) -> None:
        """Look at the loop; hand off a turn seen running at two looks in a row.

        Each look needs the GIL, which the busy loop thread then has to give up and take back
        (on two busy cores, a look every 5 ms cost a fifth of the throughput). So the looks
        back off, doubling up to :attr:`Server.handoff_after_max`, while nothing blocks, and
        come every :attr:`Server.handoff_after` again once something has.
        """
        seen = -1
        wake = self._watch_wake
        interval = self.handoff_after
        while True:
            woken = wake.wait(interval)
            with self._lock:
                if self._loop_over:
                    return
                connection, turns = self._in_turn, self._turns
                if woken:
                    # Unparked (or a stale wake-up): the turn running now is new to us.
                    wake.clear()
                elif connection is not None and turns == seen and self._leader is not None:
                    self._hand_off(connection)
                    seen = -1
                    interval = self.handoff_after
                    continue
            if not woken:
                interval = min(interval * 2, self.handoff_after_max)
                if connection is None and turns == seen:
                    self._park(turns)
                    turns = self._turns
            seen = turns

    def _hand_off(self, connection: _Connection) -> None:
        """The loop thread is blocked in ``connection``'s turn: another thread takes the loop
        over (the lock is held)."""
        logger.debug("a turn blocks: handing the loop to a new thread")
        connection.away = True
        self._orphans.append(connection)
        # From now on the old thread only finishes this turn: it is nobody's turn to watch.
        self._in_turn = None
        self._leader = None
        if self._leader_thread is not None:
            self._detached.add(self._leader_thread)
        self._start_leader()

    def _park(self, turns: int) -> None:
        """Nothing ran since the last look: sleep until a turn starts (no wake-ups when idle).

        The flag is raised before looking again, and :meth:`_turn` counts before it reads the
        flag, so one of the two always sees the other.
        """
        self._watch_wake.clear()
        self._watchdog_parked = True
        if self._turns == turns and self._in_turn is None and not self._loop_over:
            self._watch_wake.wait()
        self._watchdog_parked = False
        self._watch_wake.clear()
