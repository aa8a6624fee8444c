"""Handler hooks that need not be called: the base classes' defaults, applied inline.

A handler that does not override a hook of :class:`~transports.handler.Handler` or
:class:`~transports.handler.AsyncHandler` gets the equivalent plain function here run by the
driver (no coroutine, no worker thread, no await). The results are the ones documented in
:mod:`transports.handler`: None accepts; credentials are refused by default.
"""

from __future__ import annotations

from collections.abc import Callable

from .handler import AsyncHandler, Envelope, Handler, Session

__all__ = ["inline_hooks"]


# What the base classes' hooks do, as plain functions: a handler that does not override a hook
# gets this run inline (no coroutine, no worker thread, no await). The results are the ones
# documented in transports.handler (None accepts; credentials are refused by default).
def _accept(*args: object, **kwargs: object) -> None:
    return None


def _refuse(*args: object, **kwargs: object) -> bool:
    return False


def _clear_body(session: Session, envelope: Envelope) -> None:
    envelope.body_chunks.clear()


def _collect_body(session: Session, envelope: Envelope, data: bytes) -> None:
    envelope.body_chunks.append(data)


def _end_message(session: Session, envelope: Envelope) -> None:
    # The default message_end joins the pieces for the default message(), which accepts: the
    # join has no observable effect, only the clearing has.
    envelope.body_chunks.clear()


_DEFAULT_HOOKS: dict[str, Callable[..., object]] = {
    "connect": _accept,
    "hello": _accept,
    "mail": _accept,
    "rcpt": _accept,
    "message_start": _clear_body,
    "message_data": _collect_body,
    "message_end": _end_message,
    "message_aborted": _clear_body,
    "check_password": _refuse,
    "lookup_secret": _accept,
    "check_token": _refuse,
    "verify": _accept,
    "expand": _accept,
    "unknown_command": _accept,
    "reset": _accept,
    "disconnect": _accept,
}
#: The base classes' own hook functions, taken at import: a base class patched later (a test's
#: monkeypatch) no longer matches, and the patched hook is called.
_BASE_HOOKS: dict[type, dict[str, object]] = {
    base: {name: getattr(base, name) for name in (*_DEFAULT_HOOKS, "message")}
    for base in (Handler, AsyncHandler)
}


def inline_hooks(handler: object) -> dict[str, Callable[..., object]]:
    """The hooks of ``handler`` that are the base class's own, mapped to inline equivalents.

    Only methods looked up unchanged on :class:`Handler` or :class:`AsyncHandler` qualify (an
    override on the class or on the instance is always called); ``message_end`` qualifies only
    when ``message`` does too, since the default ``message_end`` calls ``message``. Worked out
    per connection (a few microseconds), so a class patched at run time is still honoured.
    """
    cls = type(handler)
    base: type
    if isinstance(handler, AsyncHandler):
        base = AsyncHandler
    elif isinstance(handler, Handler):
        base = Handler
    else:
        return {}
    originals = _BASE_HOOKS[base]
    table = {
        name: default
        for name, default in _DEFAULT_HOOKS.items()
        if getattr(cls, name, None) is originals[name]
    }
    if getattr(cls, "message", None) is not originals["message"]:
        table.pop("message_end", None)
    overrides = getattr(handler, "__dict__", None)
    if overrides:
        table = {name: hook for name, hook in table.items() if name not in overrides}
        if "message" in overrides:
            table.pop("message_end", None)
    return table
