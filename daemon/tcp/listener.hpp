// A listening TCP socket and the configuration it is served with.
//
// The two are separate objects because a reload (SIGHUP) may change a listener's mode and
// limits without closing its socket: the new Listener shares the old one's ListenSocket, and
// connections accepted before the reload keep the Listener (framer, limits) they came with.
// Workers have the socket in their own epoll sets with EPOLLEXCLUSIVE.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "daemon/base/config.hpp"
#include "lib/address.hpp"
#include "lib/fd.hpp"
#include "lib/framer.hpp"

namespace tcpecho {

class ListenSocket {
public:
    // Creates, binds and listens. Throws std::runtime_error naming the address on failure.
    static std::shared_ptr<ListenSocket> open(const ListenerConfig& config);
    // A listening socket passed by systemd (already made non-blocking by the caller).
    static std::shared_ptr<ListenSocket> adopt(UniqueFd fd, SocketAddress local);

    [[nodiscard]] int fd() const noexcept { return fd_.get(); }
    [[nodiscard]] const SocketAddress& local() const noexcept { return local_; }
    [[nodiscard]] bool from_systemd() const noexcept { return from_systemd_; }
    // After a reload removed the listener and every worker has stopped watching it.
    void close() noexcept { fd_.reset(); }

    // Connections on this socket, across reloads (max_connections is checked against it).
    std::atomic<std::uint32_t> connections{0};

private:
    ListenSocket(UniqueFd fd, SocketAddress local, bool from_systemd)
        : fd_(std::move(fd)), local_(local), from_systemd_(from_systemd) {}

    UniqueFd fd_;
    SocketAddress local_;
    bool from_systemd_;
};

class Listener {
public:
    Listener(const ListenerConfig& config, std::shared_ptr<ListenSocket> socket);

    [[nodiscard]] const ListenerConfig& config() const noexcept { return config_; }
    [[nodiscard]] int fd() const noexcept { return socket_->fd(); }
    [[nodiscard]] const SocketAddress& local() const noexcept { return socket_->local(); }
    [[nodiscard]] const std::shared_ptr<ListenSocket>& socket() const noexcept { return socket_; }
    [[nodiscard]] const Framer& framer() const noexcept { return framer_; }

    // Counts one more connection; false when the socket is at this config's max_connections.
    [[nodiscard]] bool try_add_connection() noexcept;
    void remove_connection() noexcept { socket_->connections.fetch_sub(1, std::memory_order_relaxed); }

    // "name=echo proto=tcp mode=raw address=127.0.0.1:7007" (+ " from=systemd")
    [[nodiscard]] std::string describe() const;

private:
    ListenerConfig config_;
    std::shared_ptr<ListenSocket> socket_;
    Framer framer_;
};

}  // namespace tcpecho
