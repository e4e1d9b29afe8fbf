// A UDP listener: one socket per worker, all bound to the same address:port with SO_REUSEPORT
// so the kernel spreads flows over the workers (by a hash of the 4-tuple) and no two threads
// ever read one socket. Also owns the per-source reply budget, which all its sockets share.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "address.hpp"
#include "config.hpp"
#include "fd.hpp"
#include "udp_policy.hpp"

namespace tcpecho {

class UdpListener {
public:
    // Binds `sockets` sockets (one per worker). Fails, naming the address, when the port is
    // in use by anyone (another tcpechod included: SO_REUSEPORT would let it join silently).
    static std::shared_ptr<UdpListener> open(const ListenerConfig& config, unsigned sockets);

    [[nodiscard]] const ListenerConfig& config() const noexcept { return config_; }
    [[nodiscard]] const SocketAddress& local() const noexcept { return local_; }
    // Bound to 0.0.0.0 or "::": replies need the destination address of each request
    // (IP_PKTINFO) to leave from the address the client sent to.
    [[nodiscard]] bool wildcard() const noexcept { return local_.is_wildcard(); }
    // The socket worker `index` serves.
    [[nodiscard]] int fd(unsigned index) const noexcept { return fds_[index % fds_.size()].get(); }
    // The ports of every UDP listener of this daemon (see judge_source); set by the server
    // once all are bound, before the workers start.
    void set_own_ports(std::vector<std::uint16_t> ports) { own_ports_ = std::move(ports); }
    [[nodiscard]] const std::vector<std::uint16_t>& own_ports() const noexcept { return own_ports_; }
    // Drain: worker `index` closes its socket (only that worker touches it). Clients then get
    // "port unreachable" instead of silence once every worker has closed.
    void close_socket(unsigned index) noexcept { fds_[index % fds_.size()].reset(); }
    // Null when udp_rate_limit is 0 (unlimited).
    [[nodiscard]] SourceRateLimiter* limiter() const noexcept { return limiter_.get(); }

    // "name=echo proto=udp address=127.0.0.1:7007 sockets=2 udp_rate_limit=1000/s udp_burst=1000"
    [[nodiscard]] std::string describe() const;

private:
    UdpListener(const ListenerConfig& config, std::vector<UniqueFd> fds, SocketAddress local);

    ListenerConfig config_;
    std::vector<UniqueFd> fds_;
    SocketAddress local_;
    std::unique_ptr<SourceRateLimiter> limiter_;
    std::vector<std::uint16_t> own_ports_;
};

}  // namespace tcpecho
