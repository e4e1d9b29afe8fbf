// Sockets passed by systemd (sd_listen_fds_with_names(3)): a socket unit's
// FileDescriptorName= names them, and each serves the [[listen]] table with the same name and
// proto. Taken once at start-up and kept for the life of the process (every configuration,
// reloaded ones too, must serve each of them).
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/base/config.hpp"
#include "lib/address.hpp"
#include "lib/fd.hpp"

namespace tcpecho {

struct InheritedSocket {
    std::string name;  // FileDescriptorName=, or the socket unit's name when not set
    Protocol proto;    // from SO_TYPE: SOCK_STREAM is tcp, SOCK_DGRAM udp
    SocketAddress local;
    UniqueFd fd;  // non-blocking, close-on-exec
};

// A passed socket the daemon cannot serve. what() explains which and why.
class ActivationError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Takes the sockets systemd passed (none when started without socket activation) and unsets
// $LISTEN_FDS & co. Throws ActivationError for a socket that is not an IPv4/IPv6 stream or
// datagram socket, a stream socket that is not listening, or two sockets with the same name
// and proto.
std::vector<InheritedSocket> take_inherited_sockets();

}  // namespace tcpecho
