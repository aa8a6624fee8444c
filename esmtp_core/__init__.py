"""esmtp-core: a sans-I/O ESMTP (RFC 5321) server and client core.

Pure state machines: bytes in, events out; replies and commands in, bytes out. No sockets,
threads, clocks or dependencies beyond the standard library. Import everything from here.
"""

# --- shared foundation ---
from ._config import BareLineEndingPolicy, ClientConfig, ServerConfig
from ._errors import LocalProtocolError, ProtocolError, RemoteProtocolError, ReplyError
from ._params import (
    BodyType,
    DsnNotify,
    DsnReturn,
    MailParams,
    ParameterError,
    RcptParams,
    xtext_decode,
    xtext_encode,
)
from ._reply import Reply
from ._sasl import (
    CLIENT_MECHANISMS,
    DEFAULT_CLIENT_PREFERENCE,
    SERVER_MECHANISMS,
    AuthPasswordCheck,
    AuthQuery,
    AuthSecretLookup,
    AuthTokenCheck,
    ChannelBinding,
    ClientCredentials,
    ClientMechanism,
    SaslContext,
    SaslError,
    ScramSecrets,
    ServerMechanism,
    select_client_mechanism,
)
from ._saslprep import SaslprepError, saslprep
from ._scram import scram_secrets_from_password
from ._sentinels import NEED_DATA, PAUSED, Sentinel

# --- server side (section owned by the server core) ---
from ._events import (
    Authenticated,
    BodyChunk,
    ConnectionClosed,
    EndOfMessage,
    Event,
    Expand,
    Hello,
    MailFrom,
    MessageAborted,
    Quit,
    RcptTo,
    Reset,
    StartTLS,
    UnknownCommand,
    Verify,
)
from ._server import ServerConnection, ServerEvent

# --- client side (section owned by the client core) ---
from ._capabilities import Capabilities
from ._client import ClientConnection
from ._client_events import (
    AuthResult,
    ClientEvent,
    CommandReply,
    DataReply,
    EhloReply,
    Greeting,
    SessionEnded,
    StartTLSReply,
    TransactionResult,
)
from ._client_state import ClientState

__all__ = [
    "CLIENT_MECHANISMS",
    "DEFAULT_CLIENT_PREFERENCE",
    "NEED_DATA",
    "PAUSED",
    "SERVER_MECHANISMS",
    "AuthPasswordCheck",
    "AuthQuery",
    "AuthResult",
    "AuthSecretLookup",
    "AuthTokenCheck",
    "Authenticated",
    "BareLineEndingPolicy",
    "BodyChunk",
    "BodyType",
    "Capabilities",
    "ChannelBinding",
    "ClientConfig",
    "ClientConnection",
    "ClientCredentials",
    "ClientEvent",
    "ClientMechanism",
    "ClientState",
    "CommandReply",
    "ConnectionClosed",
    "DataReply",
    "DsnNotify",
    "DsnReturn",
    "EhloReply",
    "EndOfMessage",
    "Event",
    "Expand",
    "Greeting",
    "Hello",
    "LocalProtocolError",
    "MailFrom",
    "MailParams",
    "MessageAborted",
    "ParameterError",
    "ProtocolError",
    "Quit",
    "RcptParams",
    "RcptTo",
    "RemoteProtocolError",
    "Reply",
    "ReplyError",
    "Reset",
    "SaslContext",
    "SaslError",
    "SaslprepError",
    "ScramSecrets",
    "Sentinel",
    "ServerConfig",
    "ServerConnection",
    "ServerEvent",
    "ServerMechanism",
    "SessionEnded",
    "StartTLS",
    "StartTLSReply",
    "TransactionResult",
    "UnknownCommand",
    "Verify",
    "saslprep",
    "scram_secrets_from_password",
    "select_client_mechanism",
    "xtext_decode",
    "xtext_encode",
]
