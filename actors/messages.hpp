// The message vocabulary between transports and protocols, and the typed
// actor interfaces of both sides.
//
// Protocol side (asyncio callback in brackets): `connected` (connection_made),
// `data` (data_received), `eof` (eof_received; the bool reply decides: true
// keeps the transport half-open, false closes it), `pause` / `resume`
// (pause_writing / resume_writing), `lost` (connection_lost; an empty error
// means a clean close).
//
// Transport side: `write`, `writelines`, `write_eof`, `close`, `abort`,
// `pause_reading`, `resume_reading`, `set_write_buffer_limits`, the queries
// `get_write_buffer_size`, `get_write_buffer_limits`, `get_extra_info`,
// `get_status`, `get_protocol`, and `set_protocol`.
//
// Guarantees every stream transport gives its protocol (each has a test in
// tests/transports/stream_semantics_test.cpp):
// - `connected` is the first message; reading starts only after the protocol
//   handled it (its empty reply), so `pause_reading` sent from the
//   `connected` handler is always honoured;
// - `lost` is delivered exactly once and is the last message;
// - `eof` at most once, never followed by `data`;
// - `pause` and `resume` strictly alternate, starting with `pause`;
// - all messages of one connection arrive in the order they happened.
//
// Every type is copyable, has a CAF `inspect` overload and is registered by
// `register_types`, so it can cross CAF's middleman.
#pragma once

#include "actors/endpoint.hpp"
#include "actors/read_credit.hpp"
#include "runtime/buffer.hpp"

#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/optional.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace shardwire {

// -- forward declarations (the two interfaces refer to each other) -----------

struct connected;
struct data;
struct eof;
struct pause;
struct resume;
struct lost;
struct write;
struct writelines;
struct write_eof;
struct close;
struct abort;
struct pause_reading;
struct resume_reading;
struct set_write_buffer_limits;
struct write_buffer_limits;
struct get_write_buffer_size;
struct get_write_buffer_limits;
struct get_extra_info;
struct transport_info;
struct get_status;
struct transport_status;
struct set_protocol;
struct get_protocol;
struct lend_buffer;
struct buffer_filled;
struct send_file;
struct start_tls;
struct start_tls_data;
struct tls_started;

// -- interfaces ---------------------------------------------------------------

/// What a stream protocol actor handles.
using protocol_actor =
    caf::typed_actor<caf::reacts_to<connected>, caf::reacts_to<data>,
                     caf::replies_to<eof>::with<bool>, caf::reacts_to<pause>,
                     caf::reacts_to<resume>, caf::reacts_to<lost>>;

/// What a stream transport actor handles.
using transport_actor = caf::typed_actor<
    caf::reacts_to<write>, caf::reacts_to<writelines>,
    caf::reacts_to<write_eof>, caf::reacts_to<close>, caf::reacts_to<abort>,
    caf::reacts_to<pause_reading>, caf::reacts_to<resume_reading>,
    caf::replies_to<set_write_buffer_limits>::with<write_buffer_limits>,
    caf::replies_to<get_write_buffer_size>::with<uint64_t>,
    caf::replies_to<get_write_buffer_limits>::with<write_buffer_limits>,
    caf::replies_to<get_extra_info>::with<transport_info>,
    caf::replies_to<get_status>::with<transport_status>,
    caf::reacts_to<set_protocol>,
    caf::replies_to<get_protocol>::with<protocol_actor>,
    caf::reacts_to<lend_buffer>, caf::replies_to<send_file>::with<uint64_t>,
    caf::replies_to<start_tls>::with<tls_started>,
    caf::reacts_to<start_tls_data>>;

/// A protocol that receives into its own memory (asyncio's BufferedProtocol):
/// it lends the transport buffers (`lend_buffer`) and gets them back filled
/// (`buffer_filled`) instead of `data`. Converts to `protocol_actor`, so the
/// factories and `set_protocol` take it as they are.
using buffered_protocol_actor =
    protocol_actor::extend<caf::reacts_to<buffer_filled>>;

// -- protocol side ------------------------------------------------------------

/// Facts about a transport, fixed when it is created (asyncio's extra info).
struct transport_info {
  /// "tcp", "unix" or "socket" (an adopted fd of another family).
  std::string kind;
  endpoint peername;
  endpoint sockname;
  /// The OS descriptor (for inspection; the transport owns it).
  int fd = -1;
  /// Index of the shard the connection lives on.
  uint32_t shard = 0;
  /// asyncio's can_write_eof(): true for sockets, the simulator's
  /// connections and write pipes (where write_eof closes); false for read
  /// pipes and datagram endpoints.
  bool can_write_eof = false;
  /// Further extra info by name that a layered backend adds (the TLS
  /// backend: "cipher", "version", ...). Empty for plain transports. Read
  /// any name with extra_info (actors/extra_info.hpp).
  std::vector<std::pair<std::string, std::string>> named;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, transport_info& x) {
  return f(caf::meta::type_name("transport_info"), x.kind, x.peername,
           x.sockname, x.fd, x.shard, x.can_write_eof, x.named);
}

/// First message of every connection. Handle it, then reading starts.
struct connected {
  transport_actor transport;
  transport_info info;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, connected& x) {
  return f(caf::meta::type_name("connected"), x.transport, x.info);
}

/// Bytes received, never empty. Chunk boundaries are arbitrary.
struct data {
  buffer bytes;
  /// Read credit held until this message is destroyed (see read_credit.hpp);
  /// not serialized, empty in copies.
  read_ticket ticket;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, data& x) {
  return f(caf::meta::type_name("data"), x.bytes);
}

/// The peer half-closed. Reply true to stay open for writing, false to close.
struct eof {};

/// The transport's write buffer rose above the high water mark.
struct pause {};

/// The transport's write buffer drained to the low water mark.
struct resume {};

/// The connection is gone; always the last message. Empty `reason` = clean.
struct lost {
  caf::error reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lost& x) {
  return f(caf::meta::type_name("lost"), x.reason);
}

// -- transport side -----------------------------------------------------------

/// Queue bytes for sending. Never copies `bytes`. An empty write is a no-op;
/// a write after `write_eof` is answered with `sw_errc::write_after_eof`; a
/// write after `close`/`abort` is dropped with a logged warning.
struct write {
  buffer bytes;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, write& x) {
  return f(caf::meta::type_name("write"), x.bytes);
}

/// Like one `write` of the concatenation, sent with gathered I/O.
struct writelines {
  std::vector<buffer> parts;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, writelines& x) {
  return f(caf::meta::type_name("writelines"), x.parts);
}

/// Half-close once the write buffer drained. Idempotent.
struct write_eof {};

/// Stop reading, flush the write buffer, then `lost` without error.
struct close {};

/// Drop the write buffer and close now; `lost` without error.
struct abort {};

/// Stop delivering `data` and `eof` until `resume_reading`. Idempotent.
struct pause_reading {};

/// Resume delivering. Idempotent; a no-op on a closing transport.
struct resume_reading {};

/// asyncio's rules: only `high` -> low = high/4; only `low` -> high = 4*low;
/// neither -> defaults 64 KiB / 16 KiB; high < low -> invalid_argument.
/// Replies with the limits now in force.
struct set_write_buffer_limits {
  caf::optional<uint64_t> high;
  caf::optional<uint64_t> low;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f,
                                        set_write_buffer_limits& x) {
  return f(caf::meta::type_name("set_write_buffer_limits"), x.high, x.low);
}

struct write_buffer_limits {
  uint64_t low = 0;
  uint64_t high = 0;
  friend bool operator==(const write_buffer_limits&,
                         const write_buffer_limits&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, write_buffer_limits& x) {
  return f(caf::meta::type_name("write_buffer_limits"), x.low, x.high);
}

/// Replies with the bytes queued in user space (not those in the kernel).
struct get_write_buffer_size {};

/// Replies with the limits as (low, high).
struct get_write_buffer_limits {};

/// Replies with the `transport_info` (asyncio's extra info; read one value
/// by name with extra_info(info, name, fallback), actors/extra_info.hpp).
struct get_extra_info {};

/// Replies with the transport's protocol now (asyncio's get_protocol): the
/// one it was created with, or the last `set_protocol`'s.
struct get_protocol {};

/// Replies with the `transport_status`.
struct get_status {};

struct transport_status {
  /// close, abort, a fatal error or an EOF auto-close has begun.
  bool closing = false;
  /// Reading is on (not paused, not closing, no EOF yet).
  bool reading = false;
  uint64_t write_buffer_size = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, transport_status& x) {
  return f(caf::meta::type_name("transport_status"), x.closing, x.reading,
           x.write_buffer_size);
}

/// Send all later protocol messages to `protocol` (asyncio's set_protocol).
/// Messages already sent stay with the previous protocol; the new one gets
/// no `connected`.
struct set_protocol {
  protocol_actor protocol;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, set_protocol& x) {
  return f(caf::meta::type_name("set_protocol"), x.protocol);
}

// -- sending a file (asyncio's loop.sendfile) ---------------------------------

/// Sends `count` bytes of the regular file `fd` from `offset` (count 0: up
/// to the end of the file) after the bytes already queued, and replies with
/// the number of bytes sent once all of them were handed to the kernel (or
/// the peer, on the simulator). Sockets and pipes use sendfile(2): the
/// bytes never enter user space; other backends read the file in 64 KiB
/// chunks. The descriptor stays the caller's: it must stay open until the
/// reply, the transport never closes it and never moves its file offset.
///
/// While it runs, writes are refused (a request gets sw_errc::not_supported,
/// a plain send is logged and dropped: asyncio raises RuntimeError), and so
/// is a second send_file; `close` waits for it as for queued bytes; the
/// protocol gets no `pause`/`resume` for the file's bytes. Errors: not a
/// regular file or a bad descriptor (sw_errc::invalid_argument; the
/// connection stays open), the transport closing or ending before the file
/// was sent (sw_errc::closed), a read pipe (sw_errc::not_supported), after
/// write_eof (sw_errc::write_after_eof), a failing file read (its errno;
/// the connection stays open), a failing socket (its errno; the connection
/// ends as for a failed write). Local only: a descriptor means nothing on
/// another node.
struct send_file {
  int fd = -1;
  uint64_t offset = 0;
  uint64_t count = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, send_file& x) {
  return f(caf::meta::type_name("send_file"), x.fd, x.offset, x.count);
}

// -- TLS (transports/tls.hpp) -------------------------------------------------

/// A TLS configuration made by `make_tls_context` (transports/tls.hpp):
/// role, certificates, trust, verification, ALPN. Shared by every
/// connection that uses it and immutable once made; opaque here.
class tls_context;

/// TLS for one connection (asyncio's `ssl=`, `server_hostname=`,
/// `ssl_handshake_timeout=`, `ssl_shutdown_timeout=`). Without a context
/// the connection carries plain bytes.
struct tls_params {
  std::shared_ptr<const tls_context> context;
  /// Client side: the name sent as SNI and checked against the server's
  /// certificate. Empty: the host connected to (a numeric address is
  /// checked as an IP address and sends no SNI). Ignored on the server side.
  std::string server_hostname;
  /// The handshake must finish within this, or the connection fails with
  /// tls_errc::handshake_timeout (asyncio's default: 60 s). 0: no bound.
  std::chrono::milliseconds handshake_timeout{60000};
  /// `close` waits this long for the queued bytes and the close_notify to
  /// leave before it drops the connection (asyncio's default: 30 s).
  std::chrono::milliseconds shutdown_timeout{30000};

  explicit operator bool() const noexcept { return context != nullptr; }
};

/// Protocol -> transport: upgrade this plaintext stream to TLS in place
/// (asyncio's loop.start_tls, STARTTLS-style protocols). The reply comes
/// after the handshake: `tls_started` with the transport's TLS extra info,
/// or the handshake's error (the connection then ends with `lost`).
///
/// No byte is lost (asyncio loses bytes that arrive with the upgrade):
/// - `early`: the bytes the protocol already received after its upgrade
///   point (the rest of the `data` that carried "STARTTLS\r\n", typically
///   the start of the peer's ClientHello); they go to TLS first.
/// - `received`: how many bytes this protocol had received from the
///   transport (in `data` or `buffer_filled`) when it sent the request.
///   Bytes the transport delivered after that (already on their way) are
///   TLS bytes too: the protocol hands each such `data` back as
///   `start_tls_data`, in order, until the reply; the transport waits for
///   them before it reads the socket again. The callback adapter
///   (transport_ref::start_tls) does all this itself.
/// Refused, and the connection ended with `lost` carrying the same error
/// (bytes handed back would have nowhere to go): a transport already on
/// TLS, a pipe, no context, a `received` above what was delivered,
/// plaintext still queued (wait for an empty write buffer first), a
/// context that cannot make a session. A closing transport refuses with
/// sw_errc::closed.
struct start_tls {
  tls_params tls;
  buffer early;
  uint64_t received = 0;
};

/// A TLS context never crosses nodes: a deserialized start_tls has none
/// and is refused.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, start_tls& x) {
  return f(caf::meta::type_name("start_tls"), x.early, x.received);
}

/// Protocol -> transport during start_tls: bytes the transport delivered
/// after the request's `received` count, handed back (see start_tls).
struct start_tls_data {
  buffer bytes;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, start_tls_data& x) {
  return f(caf::meta::type_name("start_tls_data"), x.bytes);
}

/// Transport -> protocol: the reply to start_tls: the handshake finished;
/// `info` is the transport's extra info, now with the TLS names.
struct tls_started {
  transport_info info;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tls_started& x) {
  return f(caf::meta::type_name("tls_started"), x.info);
}

// -- buffered reading (asyncio's BufferedProtocol) ---------------------------
//
// A protocol that wants the bytes in its own memory lends the transport a
// buffer; the transport's next read goes straight into it (the only copy is
// the kernel's) and the buffer comes back with the byte count. While a
// protocol lends, the transport sends it `buffer_filled` instead of `data`,
// and reads only while it holds a lease: one buffer in flight is the read
// back-pressure, and `pause_reading` works as for `data`. `eof` and `lost`
// are as for any protocol.

/// Memory lent to a transport to read into. Ownership: the lender's. The
/// transport writes [data, data + size) only between receiving it (in
/// `lend_buffer`) and sending it back (in `buffer_filled`), on the
/// connection's shard thread; the lender must not touch or free it
/// meanwhile. `keep` keeps the memory alive while it is lent, so that a
/// lender that dies with a lease out does not leave the transport writing
/// into freed memory (the callback adapter keeps itself; an actor keeps the
/// block it lends). A lease never crosses nodes (its inspect carries
/// nothing: a deserialized lease is empty).
///
/// A lease with `on_demand` set carries no memory: it asks the transport to
/// come back for memory right before its next read, as asyncio calls
/// get_buffer on each readable event. The transport then sends the lease
/// back in `buffer_filled` with `nbytes` 0 and reads once the lender has
/// lent memory (a lease without `on_demand`). Nothing is lent until there
/// is something to read; the ask is one more delivery per read, so the
/// callback adapter lends this way for its first buffer only.
struct read_lease {
  std::byte* data = nullptr;
  uint64_t size = 0;
  std::shared_ptr<const void> keep;
  bool on_demand = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, read_lease&) {
  return f(caf::meta::type_name("read_lease"));
}

/// Protocol -> transport: read into `lease` next (asyncio's get_buffer).
/// The first one switches the transport to buffered reading for the current
/// protocol; `set_protocol` switches back (the lease is dropped). An empty
/// lease (size 0) is fatal, as asyncio's empty get_buffer(): `lost` with
/// sw_errc::invalid_argument (an `on_demand` lease carries none: see
/// read_lease). Ignored once reading ended (EOF, close).
struct lend_buffer {
  read_lease lease;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lend_buffer& x) {
  return f(caf::meta::type_name("lend_buffer"), x.lease);
}

/// Transport -> protocol: `nbytes` (> 0) bytes were read into the start of
/// `lease`, which is the lender's again (asyncio's buffer_updated). With
/// `nbytes` 0, only to a lender whose lease was `on_demand`: the transport
/// is about to read and asks for memory now (asyncio's get_buffer).
struct buffer_filled {
  read_lease lease;
  uint64_t nbytes = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, buffer_filled& x) {
  return f(caf::meta::type_name("buffer_filled"), x.lease, x.nbytes);
}

// -- server side
// ----------------------------------------------------------------

/// Replies with the addresses the server listens on (empty once closed).
struct get_sockets {};

/// Start accepting (servers created with start_serving = false).
struct start_serving {};

/// Stop accepting; the listening sockets stay bound, connections stay open.
struct stop_serving {};

/// Replies whether the server is accepting.
struct is_serving {};

/// Ask every connection accepted by this server to `close` (flush, then lost).
struct close_clients {};

/// `abort` every connection accepted by this server.
struct abort_clients {};

/// What a server (listener) actor handles. `close` stops listening, closes
/// the listening sockets and ends the server actor; accepted connections
/// stay open (asyncio's Server.close()).
using server_actor = caf::typed_actor<
    caf::replies_to<get_sockets>::with<std::vector<endpoint>>,
    caf::reacts_to<start_serving>, caf::reacts_to<stop_serving>,
    caf::replies_to<is_serving>::with<bool>, caf::reacts_to<close_clients>,
    caf::reacts_to<abort_clients>, caf::reacts_to<close>>;

// -- inspection of the empty messages
// ------------------------------------------

#define SHARDWIRE_EMPTY_MESSAGE(name)                                          \
  template <class Inspector>                                                   \
  typename Inspector::result_type inspect(Inspector& f, name&) {               \
    return f(caf::meta::type_name(#name));                                     \
  }

SHARDWIRE_EMPTY_MESSAGE(eof)
SHARDWIRE_EMPTY_MESSAGE(pause)
SHARDWIRE_EMPTY_MESSAGE(resume)
SHARDWIRE_EMPTY_MESSAGE(write_eof)
SHARDWIRE_EMPTY_MESSAGE(close)
SHARDWIRE_EMPTY_MESSAGE(abort)
SHARDWIRE_EMPTY_MESSAGE(pause_reading)
SHARDWIRE_EMPTY_MESSAGE(resume_reading)
SHARDWIRE_EMPTY_MESSAGE(get_write_buffer_size)
SHARDWIRE_EMPTY_MESSAGE(get_write_buffer_limits)
SHARDWIRE_EMPTY_MESSAGE(get_extra_info)
SHARDWIRE_EMPTY_MESSAGE(get_status)
SHARDWIRE_EMPTY_MESSAGE(get_protocol)
SHARDWIRE_EMPTY_MESSAGE(get_sockets)
SHARDWIRE_EMPTY_MESSAGE(start_serving)
SHARDWIRE_EMPTY_MESSAGE(stop_serving)
SHARDWIRE_EMPTY_MESSAGE(is_serving)
SHARDWIRE_EMPTY_MESSAGE(close_clients)
SHARDWIRE_EMPTY_MESSAGE(abort_clients)

#undef SHARDWIRE_EMPTY_MESSAGE

// -- datagrams ----------------------------------------------------------------
//
// UDP and Unix datagram sockets: asyncio's DatagramProtocol / DatagramTransport
// as messages. Guarantees a datagram transport gives its protocol
// (tests/transports/udp_test.cpp):
// - `datagram_connected` is the first message; reading starts only after the
//   protocol handled it;
// - `lost` is delivered exactly once and is the last message;
// - `pause` and `resume` strictly alternate, starting with `pause`;
// - `datagram_error` (asyncio's error_received) never closes the transport.

struct datagram_connected;
struct datagram;
struct datagram_error;
struct sendto;
struct set_datagram_protocol;

/// What a datagram protocol actor handles.
using datagram_protocol_actor =
    caf::typed_actor<caf::reacts_to<datagram_connected>,
                     caf::reacts_to<datagram>, caf::reacts_to<datagram_error>,
                     caf::reacts_to<pause>, caf::reacts_to<resume>,
                     caf::reacts_to<lost>>;

/// What a datagram transport actor handles (asyncio's DatagramTransport).
using datagram_transport_actor = caf::typed_actor<
    caf::reacts_to<sendto>, caf::reacts_to<close>, caf::reacts_to<abort>,
    caf::reacts_to<pause_reading>, caf::reacts_to<resume_reading>,
    caf::replies_to<set_write_buffer_limits>::with<write_buffer_limits>,
    caf::replies_to<get_write_buffer_size>::with<uint64_t>,
    caf::replies_to<get_write_buffer_limits>::with<write_buffer_limits>,
    caf::replies_to<get_extra_info>::with<transport_info>,
    caf::replies_to<get_status>::with<transport_status>,
    caf::reacts_to<set_datagram_protocol>,
    caf::replies_to<get_protocol>::with<datagram_protocol_actor>>;

/// First message of every datagram endpoint. Handle it, then reading starts.
/// `info.kind` is "udp" or "unix_dgram"; `info.peername` is set only for a
/// connected endpoint (remote_addr).
struct datagram_connected {
  datagram_transport_actor transport;
  transport_info info;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, datagram_connected& x) {
  return f(caf::meta::type_name("datagram_connected"), x.transport, x.info);
}

/// One datagram received (asyncio's datagram_received); may be empty.
struct datagram {
  buffer bytes;
  /// The sender (for an unnamed Unix datagram sender: family none).
  endpoint peer;
  /// Read credit held until this message is destroyed (see read_credit.hpp);
  /// not serialized, empty in copies.
  read_ticket ticket;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, datagram& x) {
  return f(caf::meta::type_name("datagram"), x.bytes, x.peer);
}

/// A send or receive failed (asyncio's error_received): ECONNREFUSED after an
/// ICMP port unreachable on a connected endpoint, EMSGSIZE for an oversized
/// datagram ... The transport stays open.
struct datagram_error {
  caf::error reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, datagram_error& x) {
  return f(caf::meta::type_name("datagram_error"), x.reason);
}

/// Send one datagram. A connected endpoint takes no `peer` or its remote
/// address; an unconnected one needs `peer`. A bad peer is answered with
/// `sw_errc::invalid_argument` to a request and logged for a plain send; the
/// transport stays open either way. Never copies `bytes`.
struct sendto {
  buffer bytes;
  caf::optional<endpoint> peer;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sendto& x) {
  return f(caf::meta::type_name("sendto"), x.bytes, x.peer);
}

/// asyncio's DatagramTransport.set_protocol: later protocol messages go to
/// `protocol` (which gets no `datagram_connected`); those already sent stay
/// with the previous one.
struct set_datagram_protocol {
  datagram_protocol_actor protocol;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f,
                                        set_datagram_protocol& x) {
  return f(caf::meta::type_name("set_datagram_protocol"), x.protocol);
}

// -- subprocesses -------------------------------------------------------------
//
// asyncio's SubprocessProtocol / SubprocessTransport as messages. Guarantees a
// subprocess transport gives its protocol (tests/transports/subprocess_test):
// - `subprocess_connected` is the first message; no pipe is read before the
//   protocol handled it;
// - per fd, `pipe_data` never follows that fd's `pipe_lost`;
// - `exited` comes once, possibly before the last output (asyncio's rule: a
//   grandchild may hold a pipe open after the child exited);
// - `lost` is delivered exactly once and last: after `exited` and after every
//   pipe's `pipe_lost`;
// - `pause` / `resume` (stdin's write buffer) strictly alternate.
// The standard streams are fds 0, 1, 2 as in asyncio.

struct subprocess_connected;
struct pipe_data;
struct pipe_lost;
struct exited;
struct signal;
struct terminate;
struct kill;
struct get_pid;
struct get_returncode;
struct get_pipe_transport;
struct process_info;
struct set_subprocess_protocol;

/// What a subprocess protocol actor handles.
using subprocess_protocol_actor =
    caf::typed_actor<caf::replies_to<subprocess_connected>::with<void>,
                     caf::reacts_to<pipe_data>, caf::reacts_to<pipe_lost>,
                     caf::reacts_to<exited>, caf::reacts_to<pause>,
                     caf::reacts_to<resume>, caf::reacts_to<lost>>;

/// What a subprocess transport actor handles (asyncio's SubprocessTransport
/// plus the stdin pipe's write methods).
using subprocess_transport_actor = caf::typed_actor<
    caf::replies_to<write>::with<void>, caf::replies_to<writelines>::with<void>,
    caf::reacts_to<write_eof>, caf::reacts_to<close>,
    caf::replies_to<signal>::with<void>, caf::replies_to<terminate>::with<void>,
    caf::replies_to<kill>::with<void>, caf::replies_to<get_pid>::with<int32_t>,
    caf::replies_to<get_returncode>::with<caf::optional<int32_t>>,
    caf::replies_to<get_pipe_transport>::with<transport_actor>,
    caf::replies_to<get_extra_info>::with<process_info>,
    caf::replies_to<get_status>::with<transport_status>,
    caf::replies_to<get_protocol>::with<subprocess_protocol_actor>,
    caf::reacts_to<set_subprocess_protocol>>;

/// What the transport tells its protocol about the child.
struct process_info {
  int32_t pid = 0;
  /// Process group of the child (its pid when it got a new group).
  int32_t pgid = 0;
  /// argv as executed (`/bin/sh -c CMD` for a shell command).
  std::vector<std::string> args;
  uint32_t shard = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, process_info& x) {
  return f(caf::meta::type_name("process_info"), x.pid, x.pgid, x.args,
           x.shard);
}

/// First message to a subprocess protocol (asyncio's connection_made).
struct subprocess_connected {
  subprocess_transport_actor transport;
  process_info info;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, subprocess_connected& x) {
  return f(caf::meta::type_name("subprocess_connected"), x.transport, x.info);
}

/// Output of the child on `fd` (1 or 2); never empty.
struct pipe_data {
  int32_t fd = 1;
  buffer bytes;
  /// Read credit held until this message is destroyed (read_credit.hpp): a
  /// protocol that does not keep up stops the pipe being read, so a chatty
  /// child blocks in write instead of growing memory. Not serialized.
  read_ticket ticket;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pipe_data& x) {
  return f(caf::meta::type_name("pipe_data"), x.fd, x.bytes);
}

/// Pipe `fd` closed (asyncio's pipe_connection_lost); `reason` is empty for
/// a clean close, EPIPE when the child closed stdin with data queued.
struct pipe_lost {
  int32_t fd = 0;
  caf::error reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pipe_lost& x) {
  return f(caf::meta::type_name("pipe_lost"), x.fd, x.reason);
}

/// The child exited (asyncio's process_exited): `status` is the exit code, or
/// minus the signal number that killed it. `oom_killed`: the kernel's OOM
/// killer killed a process in the child's cgroup (child_limits::cgroup with
/// memory_max; always false for a child without a cgroup).
struct exited {
  int32_t status = 0;
  bool oom_killed = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, exited& x) {
  return f(caf::meta::type_name("exited"), x.status, x.oom_killed);
}

/// Sends signal `signo` to the child, or to its whole process group when
/// `group` is set. Refused with sw_errc::process_exited once the child
/// exited: a signal never reaches a recycled pid.
struct signal {
  int32_t signo = 0;
  bool group = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, signal& x) {
  return f(caf::meta::type_name("signal"), x.signo, x.group);
}

/// SIGTERM to the child (asyncio's terminate).
struct terminate {};
/// SIGKILL to the child (asyncio's kill).
struct kill {};
/// Asks for the child's pid.
struct get_pid {};
/// Asks for the return code: none while the child runs.
struct get_returncode {};

/// Asks for the pipe transport of fd 0, 1 or 2 (asyncio's
/// get_pipe_transport); an error if that stream is not a pipe or is closed.
struct get_pipe_transport {
  int32_t fd = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, get_pipe_transport& x) {
  return f(caf::meta::type_name("get_pipe_transport"), x.fd);
}

/// asyncio's set_protocol on a subprocess transport: later events go to
/// `protocol` (which gets no `subprocess_connected`, and is monitored from
/// now on: if it dies, the child is killed); those already sent stay with
/// the previous one.
struct set_subprocess_protocol {
  subprocess_protocol_actor protocol;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f,
                                        set_subprocess_protocol& x) {
  return f(caf::meta::type_name("set_subprocess_protocol"), x.protocol);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, terminate&) {
  return f(caf::meta::type_name("terminate"));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, kill&) {
  return f(caf::meta::type_name("kill"));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, get_pid&) {
  return f(caf::meta::type_name("get_pid"));
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, get_returncode&) {
  return f(caf::meta::type_name("get_returncode"));
}

/// One line (without its newline) or chunk of a supervised child's output
/// (transports/process_child.hpp), sent to the child's subscriber.
struct process_output {
  std::string id;
  int32_t fd = 1;
  buffer bytes;
  /// Read credit (see read_credit.hpp); not serialized.
  read_ticket ticket;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, process_output& x) {
  return f(caf::meta::type_name("process_output"), x.id, x.fd, x.bytes);
}

/// A supervised child's STATUS=... notification (sd_notify(3); see
/// process_spec::notify), sent to the child's subscriber in order with its
/// output messages' notifications.
struct process_status {
  std::string id;
  std::string status;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, process_status& x) {
  return f(caf::meta::type_name("process_status"), x.id, x.status);
}

/// Registers every message type, the actor handle types and the error
/// categories with `cfg` (done by `shardwire::config`).
void register_types(caf::actor_system_config& cfg);

} // namespace shardwire
