// Stream nodes (actors/stream_node.hpp) on the simulated network: a host
// serves a directory on a port, other hosts watch its services, and the
// node layer's frames cross simulated links, so partitions, latency, loss,
// crashes and restarts apply to node links, in virtual time.
//
// Thread rules: as for `sim::network`: call these from the thread that owns
// the network (a host's `on_boot` function included). The connector may
// also be called from inside actors of the simulation (service watches do):
// it only schedules the connect.
#pragma once

#include "actors/stream_node.hpp"
#include "sim/network.hpp"

#include <string>

namespace shardwire::sim {

/// Serves `dir` as a stream node on `host:port` (every connection gets the
/// protocol of `serve_stream_node`). Call it from the host's `on_boot`
/// function so that a restarted host serves again. Errors: those of
/// `network::listen`.
caf::error serve_stream_node(network& net, const std::string& host,
                             uint16_t port, stream_node_directory dir);

/// A `stream_connector` whose connections start from host `from`; the
/// address's host is a host name or its 10.0.0.N address. `timeout` bounds
/// each connect in virtual time (0: none; a connect into a partition or to
/// a crashed host then hangs until the watch's lookup timeout). The network
/// must outlive every watch using it.
stream_connector stream_node_connector(network& net, std::string from,
                                       duration timeout = duration::zero());

} // namespace shardwire::sim
