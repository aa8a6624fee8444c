"""The asyncio client: :class:`Client` over an asyncio protocol of its own.

Same API as the blocking :class:`transports.sockets.Client`, with coroutines (the API itself is
:class:`transports._client_base.AsyncClientBase`; this module only moves bytes).

The connection is a :class:`_ClientProtocol` (an ``asyncio.BufferedProtocol``) rather than
asyncio streams, which cost the CPU of the protocol itself on small messages:

* an operation runs on inside the callback that received its reply (:meth:`_ClientProtocol.pump`:
  feed the driver, write what it answers, wait for the next reply), so its task wakes once per
  operation, not once per read: one event-loop pass per reply instead of two;
* the transport reads into one preallocated buffer (a plain protocol gets each read as a fresh
  256 KiB bytes object shrunk to the few octets of a reply: several times the cost of the
  ``recv``), and the octets go to the driver without a ``StreamReader``'s copies;
* one ``loop.call_at`` timer per connection bounds the reads (:class:`MovingDeadline`), and a
  write waits only while the transport holds more than its high-water mark.

STARTTLS is ``loop.start_tls`` on that protocol (so it also works on Python 3.10, which has no
``StreamWriter.start_tls``); implicit TLS the ``ssl`` argument of ``loop.create_connection``.
Only public asyncio API is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import TypeVar

from .._client_base import READ_SIZE, AsyncClientBase, Step, io_errors
from .._client_driver import ClientDriver, ClientOptions, Steps, Want, must_close
from ._deadline import MovingDeadline

T = TypeVar("T")

#: An operation the protocol runs on from its callbacks: steps, driver, options, and the future
#: the operation's task waits on (see :meth:`_ClientProtocol.pump`).
_Pumped = tuple[Steps[object], ClientDriver, ClientOptions, "asyncio.Future[tuple[str, object]]"]

__all__ = ["Client"]

#: Received bytes held while no read waits, beyond which the transport stops reading (the
#: server is flooding us: bounded memory). A reply is far smaller; the driver reads again soon.
_PAUSE_ABOVE = 256 * 1024


class _ClientProtocol(asyncio.BufferedProtocol):
    """One client connection's bytes: what arrived (handed to at most one waiting read), the
    end of the stream or its error, write flow control and the read deadline.

    Not re-entrant: one read and one write at a time (the client runs one operation at a time).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        #: Where the transport reads into (see :meth:`get_buffer`).
        self._landing = memoryview(bytearray(READ_SIZE))
        #: Bytes received that no read has taken yet (in order), and their total size.
        self._held: list[bytes] = []
        self._held_size = 0
        self._reading_paused = False
        #: The waiting read's future, if any (data, end of stream or error completes it).
        self._waiter: asyncio.Future[bytes] | None = None
        #: Set when the connection is over: None for a clean end (EOF), else what broke it.
        self._eof = False
        self._error: BaseException | None = None
        self._lost = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = loop.create_future()
        self._deadline = MovingDeadline(loop, self._expire)
        #: The operation being pumped from the callbacks (see :meth:`pump`): its steps,
        #: driver, options and the future its task waits on; None when none waits for bytes.
        self._pumped: _Pumped | None = None

    # --- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Also called with the TLS transport when a STARTTLS handshake completes.
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        # A fixed buffer: a plain Protocol gets each read as a fresh bytes object of the
        # transport's max_size (256 KiB) shrunk to what came, which costs several times the
        # recv itself for a 30-octet reply; reading into this and copying the few octets out
        # does not.
        return self._landing

    def buffer_updated(self, nbytes: int) -> None:
        self._received(bytes(self._landing[:nbytes]))

    def _received(self, data: bytes) -> None:
        if self._pumped is not None:
            self._resume(data)
            return
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():  # (a cancelled read leaves its future behind)
                waiter.set_result(data)
                return
        self._held.append(data)
        self._held_size += len(data)
        if self._held_size > _PAUSE_ABOVE and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_reader()
        # Keep a plain TCP connection open for writing (the driver decides what an early end
        # means); over TLS, asyncio closes the transport whatever we return.
        return self.transport is not None and self.transport.get_extra_info("sslcontext") is None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._eof = True
        if exc is not None and self._error is None:
            self._error = exc
        self._deadline.cancel()
        self._wake_reader()
        drain = self._drain_waiter
        if drain is not None and not drain.done():
            drain.set_exception(self._lost_error())
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        drain = self._drain_waiter
        if drain is not None and not drain.done():
            drain.set_result(None)

    # --- what the client calls ------------------------------------------------------------------

    async def read(self, timeout: float | None) -> bytes:
        """What has arrived (waiting for it when nothing has, at most ``timeout`` seconds, then
        ``TimeoutError``); ``b""`` at the end of the stream; the connection's error if it broke.
        Bytes received before the end are returned before it."""
        if self._held:
            return self._take()
        if self._eof:
            if self._error is not None:
                raise self._error
            return b""
        waiter: asyncio.Future[bytes] = self._loop.create_future()
        self._waiter = waiter
        if timeout is not None:
            self._deadline.set(self._loop.time() + timeout)
        else:
            self._deadline.set(None)
        return await waiter

    def discard(self) -> None:
        """Drop what arrived and no read took (RFC 3207 §4.2: nothing the server sent before the
        TLS handshake may be read as if it came after)."""
        self._held.clear()
        self._held_size = 0
        self._resume_reading()

    def write_now(self, data: bytes) -> bool:
        """Hand ``data`` to the transport; True when the caller must :meth:`drain` (above the
        high-water mark). Raises the connection's error when it is over."""
        if self._lost or self.transport is None or self.transport.is_closing():
            raise self._lost_error()
        self.transport.write(data)
        return self._write_paused

    async def drain(self) -> None:
        """Wait until the transport's buffer falls to its low-water mark."""
        if not self._write_paused:
            return
        if self._lost:
            raise self._lost_error()
        drain: asyncio.Future[None] = self._loop.create_future()
        self._drain_waiter = drain
        try:
            await drain
        finally:
            self._drain_waiter = None

    def close(self) -> None:
        """Close the transport (the peer gets what is buffered, then the end)."""
        self._deadline.cancel()
        if self.transport is not None:
            self.transport.close()

    def pump(
        self,
        steps: Steps[object],
        driver: ClientDriver,
        options: ClientOptions,
        want: object,
        operation: asyncio.Future[tuple[str, object]] | None = None,
    ) -> tuple[str, object] | None:
        """Run operation ``steps`` as far as it goes without waiting (the runner of
        :mod:`transports._client_driver`: flush what the driver has, then do what it wants).

        Returns ``("drain", want)`` when a write went above the high-water mark (the caller
        waits for room, then pumps ``want``), ``("tls", None)`` for a handshake the caller must
        do; None when the operation waits for bytes: the callbacks then go on running it, and
        :meth:`wait` gives its outcome. ``StopIteration`` ends the operation; I/O errors come
        out translated (:func:`transports._client_base.io_errors`).
        """
        while True:
            data = driver.data_to_send()
            if data:
                if self._lost or self.transport is None or self.transport.is_closing():
                    raise _translated("write", options, self._lost_error())
                self.transport.write(data)
                if self._write_paused:
                    return ("drain", want)
            if want is Want.READ:
                if self._held:
                    received = self._take()
                elif self._eof:
                    if self._error is not None:
                        raise _translated("read", options, self._error)
                    received = b""
                else:
                    timeout = driver.read_timeout()
                    self._deadline.set(None if timeout is None else self._loop.time() + timeout)
                    if operation is None:  # (from a callback: the future the task waits on)
                        operation = self._loop.create_future()
                    self._pumped = (steps, driver, options, operation)
                    return None
                want = steps.send(received)
            elif want is Want.WRITE:
                want = steps.send(None)
            else:
                return ("tls", None)

    async def wait(self) -> tuple[str, object]:
        """The outcome of an operation :meth:`pump` left waiting for bytes: ``("done",
        value)``, or what :meth:`pump` returns when it stops; raises what the operation
        raised."""
        assert self._pumped is not None
        return await self._pumped[3]

    def stop(self) -> None:
        """Forget the pumped operation (it ended, or its task was cancelled)."""
        self._pumped = None

    def _resume(self, received: bytes) -> None:
        # Bytes (or the end) for the pumped operation: run it on from this callback.
        assert self._pumped is not None
        steps, driver, options, operation = self._pumped
        self._pumped = None
        if operation.done():  # the task was cancelled: nothing may run the operation on
            self._held.append(received)
            self._held_size += len(received)
            return
        try:
            outcome = self.pump(steps, driver, options, steps.send(received), operation)
        except StopIteration as stop:
            operation.set_result(("done", stop.value))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            operation.set_exception(exc)
        else:
            if outcome is not None:
                operation.set_result(outcome)

    def _fail(self, error: BaseException) -> None:
        assert self._pumped is not None
        operation = self._pumped[3]
        self._pumped = None
        if not operation.done():
            operation.set_exception(error)

    # --- internals ------------------------------------------------------------------------------

    def _take(self) -> bytes:
        held = self._held
        data = held[0] if len(held) == 1 else b"".join(held)
        held.clear()
        self._held_size = 0
        self._resume_reading()
        return data

    def _resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            if self.transport is not None and not self._lost:
                self.transport.resume_reading()

    def _wake_reader(self) -> None:
        pumped = self._pumped
        if pumped is not None and not self._held:
            if self._error is None:
                self._resume(b"")
            else:
                self._fail(_translated("read", pumped[2], self._error))
            return
        waiter = self._waiter
        if waiter is None:
            return
        self._waiter = None
        if waiter.done():
            return
        if self._error is not None:
            waiter.set_exception(self._error)
        else:
            waiter.set_result(b"")

    def _expire(self) -> None:
        # The read deadline passed; a read still waiting times out (the driver then closes).
        pumped = self._pumped
        if pumped is not None:
            self._fail(_translated("read", pumped[2], TimeoutError()))
            return
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_exception(TimeoutError())

    def _lost_error(self) -> BaseException:
        return self._error or ConnectionResetError("Connection lost")


def _translated(step: Step, options: ClientOptions, exc: BaseException) -> BaseException:
    """``exc`` as :func:`io_errors` turns it (only on the failure paths: costs a raise)."""
    try:
        with io_errors(step, options):
            raise exc
    except BaseException as error:
        return error
    raise AssertionError("unreachable")  # pragma: no cover


class Client(AsyncClientBase):
    """An asyncio SMTP/LMTP client (RFC 5321, 3207, 4954, 2033; extensions used when offered).

    ::

        async with Client("mx.example", 587, tls="starttls") as client:
            await client.login("user", "secret")
            result = await client.send_message(email_message)
            assert result.ok, result.refused

    Arguments, results and errors are those of :class:`transports.sockets.Client`. One operation
    at a time per client (a second concurrent one raises ``RuntimeError``).
    """

    _protocol: _ClientProtocol | None = None

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        """The TLS object once TLS is up (peer certificate, cipher, version)."""
        protocol = self._protocol
        if protocol is None or protocol.transport is None:
            return None
        tls_object: ssl.SSLObject | None = protocol.transport.get_extra_info("ssl_object")
        return tls_object

    async def close(self) -> None:
        """Close the connection without QUIT (safe to call twice)."""
        protocol = self._protocol
        await self._abort()
        if protocol is not None:
            with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):
                # Bounded tighter than a read: a TLS peer that never answers close_notify must
                # not hold the caller for a whole timeout. (Shielded: the future is the
                # protocol's, a timeout must not cancel it.)
                await asyncio.wait_for(
                    asyncio.shield(protocol.closed), min(self.options.timeout or 5, 5)
                )

    # --- the primitives (see AsyncClientBase) ---------------------------------------------------

    @property
    def _is_open(self) -> bool:
        return self._protocol is not None

    async def _open(self) -> object:
        options = self.options
        implicit = options.implicit_tls
        loop = asyncio.get_running_loop()
        protocol = _ClientProtocol(loop)
        with io_errors("connect", options):
            transport, _ = await asyncio.wait_for(
                loop.create_connection(
                    lambda: protocol,
                    options.host,
                    options.port,
                    ssl=options.tls_context() if implicit else None,
                    server_hostname=options.tls_hostname if implicit else None,
                    ssl_handshake_timeout=options.open_timeout if implicit else None,
                ),
                options.open_timeout,
            )
        self._protocol = protocol
        return transport.get_extra_info("sockname")

    async def _abort(self) -> None:
        # No await before the close: also complete when the task is being cancelled.
        self._end_session()
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.close()

    async def _write(self, data: bytes) -> None:
        if not data:
            return
        protocol = self._protocol
        assert protocol is not None
        try:
            # Below the high-water mark the transport takes the bytes and we go on at once; above
            # it (flow control bounding our memory) we wait for room.
            write_paused = protocol.write_now(data)
        except Exception:  # (a try costs nothing when nothing is raised; a with block does)
            with io_errors("write", self.options):
                raise
        if write_paused:
            await self._wait_for_room(protocol)

    async def _wait_for_room(self, protocol: _ClientProtocol) -> None:
        """Wait, bounded by the timeout, until the transport is below its high-water mark."""
        try:
            await asyncio.wait_for(protocol.drain(), self.options.timeout)
        except Exception:
            with io_errors("write", self.options):
                raise

    async def _read(self, timeout: float | None) -> bytes:
        protocol = self._protocol
        assert protocol is not None
        try:
            return await protocol.read(timeout)
        except Exception:
            with io_errors("read", self.options):
                raise

    async def _start_tls(self, timeout: float | None) -> ssl.SSLObject | None:
        protocol = self._protocol
        assert protocol is not None
        assert protocol.transport is not None
        options = self.options
        # Whatever the server sent behind its 220 is dropped (RFC 3207 §4.2; response
        # injection): the driver dropped what it had parsed, this drops what it had not read.
        protocol.discard()
        with io_errors("tls", options):
            transport = await asyncio.get_running_loop().start_tls(
                protocol.transport,
                protocol,
                options.tls_context(),
                server_hostname=options.tls_hostname,
                ssl_handshake_timeout=timeout,
            )
            if transport is None:  # pragma: no cover - the transport was closed meanwhile
                raise ConnectionResetError("connection lost in the TLS handshake")
        protocol.transport = transport
        return self.ssl_object

    # --- the runner -----------------------------------------------------------------------------

    async def _run(self, steps: Steps[T]) -> T:
        # AsyncClientBase._run, with the reads done by the protocol's callbacks: a reply runs
        # the operation on in the callback that received it, and the task wakes once per
        # operation (or when a write must wait for room, or for a TLS handshake) instead of
        # once per read: one event-loop pass per reply instead of two. A `_read` replaced on the
        # instance or in a subclass keeps the generic runner, so that replacement is honoured.
        if "_read" in self.__dict__ or type(self)._read is not Client._read:
            return await super()._run(steps)
        driver = self._session()
        driver.run_guard()
        protocol = self._protocol
        assert protocol is not None
        options = self.options
        pumped: Steps[object] = steps
        try:
            try:
                want: object = next(steps)
                while True:
                    outcome = protocol.pump(pumped, driver, options, want)
                    if outcome is None:
                        outcome = await protocol.wait()
                    kind, value = outcome
                    if kind == "done":
                        await self._flush(driver)
                        result: T = value  # type: ignore[assignment]
                        return result
                    if kind == "drain":
                        await self._wait_for_room(protocol)
                        want = value
                    else:
                        want = steps.send(await self._start_tls(options.timeout))
            except StopIteration as stop:
                await self._flush(driver)
                final: T = stop.value
                return final
        except BaseException as exc:
            if must_close(driver, exc):
                await self._abort()
            raise
        finally:
            protocol.stop()
            steps.close()
