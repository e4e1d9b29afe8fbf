// Which UDP datagrams tcpechod must not answer, and how often it may answer one source.
//
// A UDP echo answers whoever the source address claims to be, so a forged source turns it
// into a reflector (towards a victim) or into one end of an endless loop (towards another
// echo/chargen-style service, or towards itself). These rules are the guard; the socket code
// applies them to every datagram and counts every drop.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>

namespace tcpecho {

// An IP address in one comparable form: IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d), so a
// dual-stack socket's v4-mapped sources and plain IPv4 compare equal.
struct IpKey {
    std::uint8_t bytes[16];

    static IpKey from(const sockaddr* addr) noexcept;  // AF_INET or AF_INET6
    static IpKey from(const in_addr& a) noexcept;
    static IpKey from(const in6_addr& a) noexcept;
    friend bool operator==(const IpKey&, const IpKey&) noexcept = default;
    [[nodiscard]] bool is_v4() const noexcept;
};

enum class SourceVerdict : std::uint8_t {
    Answer,
    Reflection,    // source port 0, 7, 13, 19 or 37, or a source that cannot be a unicast sender
    OwnPort,       // from a port tcpechod serves UDP on: answering could start an echo loop
    NotUnicastTo,  // sent to a broadcast or multicast address: many hosts would answer it
};

// `source`: the datagram's sender. `destination`: where it was sent to, when the socket
// reports it (IP_PKTINFO on wildcard sockets); `to_broadcast`: the kernel delivered it as a
// broadcast (IPv4: its destination differs from the local address it would be answered from).
// `own_ports`: the ports of every UDP listener of this daemon.
//
// Why any own port and not only "our own address:port": on a wildcard listener every local
// address is ours (a forged 127.0.0.2:P -> 127.0.0.1:P would bounce between them), two
// listeners of one daemon could bounce between each other, and two tcpechods on one port on
// two hosts likewise. A client that picks a listener's port as its source is not served.
SourceVerdict judge_source(const sockaddr* source, const IpKey* destination, bool to_broadcast,
                           std::span<const std::uint16_t> own_ports) noexcept;

// Whether an address is multicast, broadcast (255.255.255.255) or unspecified.
bool is_non_unicast(const IpKey& address) noexcept;

// The source ports of the services UDP echo must never talk to: port 0 cannot be answered
// properly, and echo (7), daytime (13), chargen (19) and time (37) answer anything, so
// replying to them starts a loop between two servers.
bool is_reflection_port(std::uint16_t port) noexcept;

// A per-source-address reply budget: GCRA (the token bucket as one timestamp per source).
// Each source may get `rate` replies per second on average and `burst` at once. Shared by
// the worker threads of a listener (a source's flows may land on different workers), with
// striped locks. The table has a fixed size: a source whose bucket would be full again needs
// no entry, so entries are reused freely, and a flood of forged sources cannot grow memory.
class SourceRateLimiter {
public:
    static constexpr std::size_t kDefaultCapacity = 65536;

    // rate >= 1 replies/s, burst >= 1.
    SourceRateLimiter(std::uint32_t rate, std::uint32_t burst, std::size_t capacity = kDefaultCapacity);
    ~SourceRateLimiter();
    SourceRateLimiter(const SourceRateLimiter&) = delete;
    SourceRateLimiter& operator=(const SourceRateLimiter&) = delete;

    // Whether `source` may get one more reply at `now_ns` (a monotonic clock); if so, it is
    // charged for it.
    [[nodiscard]] bool allow(const IpKey& source, std::uint64_t now_ns) noexcept;

private:
    struct Entry {
        IpKey key;
        std::uint64_t tat;  // GCRA's theoretical arrival time; 0 = unused
    };
    struct Shard;
    static constexpr std::size_t kShards = 64;
    static constexpr std::size_t kWays = 8;  // entries a source may occupy: one set

    [[nodiscard]] std::uint64_t hash(const IpKey& key) const noexcept;

    std::uint64_t interval_ns_;   // time one reply costs
    std::uint64_t tolerance_ns_;  // burst * interval: how far ahead a source may get
    std::uint64_t secret_;        // hash key: forged sources cannot aim at one set
    std::size_t sets_per_shard_;
    std::unique_ptr<Shard[]> shards_;
};

}  // namespace tcpecho
