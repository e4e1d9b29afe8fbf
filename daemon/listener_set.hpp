// The listeners the workers serve, as one immutable generation (service/listener_table.hpp
// builds each one, at start-up and on every reload).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "daemon/base/config.hpp"
#include "daemon/tcp/listener.hpp"
#include "daemon/udp/udp_listener.hpp"

namespace tcpecho {

struct ListenerSet {
    std::uint64_t generation = 0;
    std::vector<std::shared_ptr<Listener>> tcp;
    std::vector<std::shared_ptr<UdpListener>> udp;
    // Activated by systemd, but no socket was passed for these: not served.
    std::vector<ListenerConfig> without_socket;

    [[nodiscard]] std::size_t size() const noexcept { return tcp.size() + udp.size(); }
};

}  // namespace tcpecho
