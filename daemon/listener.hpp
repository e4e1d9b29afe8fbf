// A bound, listening TCP socket and the configuration of what it serves. Shared by all
// workers (each has it in its own epoll set with EPOLLEXCLUSIVE); immutable once open except
// for the connection count, which enforces max_connections across workers.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "address.hpp"
#include "config.hpp"
#include "fd.hpp"
#include "framer.hpp"

namespace tcpecho {

class Listener {
public:
    // Creates, binds and listens. Throws std::runtime_error naming the address on failure.
    static std::shared_ptr<Listener> open(const ListenerConfig& config);

    [[nodiscard]] const ListenerConfig& config() const noexcept { return config_; }
    [[nodiscard]] int fd() const noexcept { return fd_.get(); }
    [[nodiscard]] const SocketAddress& local() const noexcept { return local_; }
    [[nodiscard]] const Framer& framer() const noexcept { return framer_; }

    // Reserves a connection slot; false when the listener is at max_connections.
    [[nodiscard]] bool try_add_connection() noexcept;
    void remove_connection() noexcept { connections_.fetch_sub(1, std::memory_order_relaxed); }

    // "name=echo proto=tcp mode=raw address=127.0.0.1:7007"
    [[nodiscard]] std::string describe() const;

private:
    Listener(const ListenerConfig& config, UniqueFd fd, SocketAddress local);

    ListenerConfig config_;
    UniqueFd fd_;
    SocketAddress local_;
    Framer framer_;
    std::atomic<std::uint32_t> connections_{0};
};

}  // namespace tcpecho
