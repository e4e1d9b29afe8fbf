// UDP listeners: one socket per worker, all bound to the same address:port with SO_REUSEPORT
// so the kernel spreads flows over the workers (by a hash of the 4-tuple) and no two threads
// ever read one socket.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "daemon/base/config.hpp"
#include "daemon/udp/udp_policy.hpp"
#include "lib/address.hpp"
#include "lib/fd.hpp"

namespace tcpecho {

// The sockets of one UDP address: one per worker, bound with SO_REUSEPORT; or the single
// socket systemd passed (served by worker 0: systemd hands over one socket, and SO_REUSEPORT
// siblings of it would need the bind permission the hardened unit does not have).
// Shared across reloads by the UdpListener generations that serve this address.
class UdpSocketSet {
public:
    // Binds `sockets` sockets. Fails, naming the address, when the port is in use by anyone
    // (another tcpechod included: SO_REUSEPORT would let it join silently).
    static std::shared_ptr<UdpSocketSet> open(const ListenerConfig& config, unsigned sockets);
    // A datagram socket passed by systemd: gets the same options as our own, but no bind.
    static std::shared_ptr<UdpSocketSet> adopt(const std::string& name, UniqueFd fd, SocketAddress local);

    [[nodiscard]] const SocketAddress& local() const noexcept { return local_; }
    [[nodiscard]] unsigned size() const noexcept { return static_cast<unsigned>(fds_.size()); }
    [[nodiscard]] bool from_systemd() const noexcept { return from_systemd_; }
    // The socket worker `index` serves (index < size()).
    [[nodiscard]] int fd(unsigned index) const noexcept { return fds_[index].get(); }
    // Worker `index` closes its socket (only that worker touches it): at drain, or when a
    // reload removed the listener. Sockets from systemd are kept (a later reload may want them).
    void close(unsigned index) noexcept {
        if (!from_systemd_) fds_[index].reset();
    }

private:
    UdpSocketSet(std::vector<UniqueFd> fds, SocketAddress local, bool from_systemd)
        : fds_(std::move(fds)), local_(local), from_systemd_(from_systemd) {}

    std::vector<UniqueFd> fds_;
    SocketAddress local_;
    bool from_systemd_;
};

// A UDP listener: its configuration, its sockets and the per-source reply budget, which all
// its sockets share. A reload makes a new UdpListener on the same socket set.
class UdpListener {
public:
    UdpListener(const ListenerConfig& config, std::shared_ptr<UdpSocketSet> sockets);

    [[nodiscard]] const ListenerConfig& config() const noexcept { return config_; }
    [[nodiscard]] const SocketAddress& local() const noexcept { return sockets_->local(); }
    [[nodiscard]] const std::shared_ptr<UdpSocketSet>& sockets() const noexcept { return sockets_; }
    // Bound to 0.0.0.0 or "::": replies need the destination address of each request
    // (IP_PKTINFO) to leave from the address the client sent to.
    [[nodiscard]] bool wildcard() const noexcept { return local().is_wildcard(); }
    // The ports of every UDP listener of this daemon (see judge_source); set by the server
    // once all are bound, before the workers see this listener.
    void set_own_ports(std::vector<std::uint16_t> ports) { own_ports_ = std::move(ports); }
    [[nodiscard]] const std::vector<std::uint16_t>& own_ports() const noexcept { return own_ports_; }
    // Null when udp_rate_limit is 0 (unlimited).
    [[nodiscard]] SourceRateLimiter* limiter() const noexcept { return limiter_.get(); }
    // Reload: share `previous`'s per-source state when the limits are the same.
    void keep_limiter_of(const UdpListener& previous) noexcept;

    // "name=echo proto=udp address=127.0.0.1:7007 sockets=2 udp_rate_limit=1000/s udp_burst=1000"
    [[nodiscard]] std::string describe() const;

private:
    ListenerConfig config_;
    std::shared_ptr<UdpSocketSet> sockets_;
    std::shared_ptr<SourceRateLimiter> limiter_;
    std::vector<std::uint16_t> own_ports_;
};

}  // namespace tcpecho
