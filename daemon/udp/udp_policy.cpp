#include "daemon/udp/udp_policy.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

namespace tcpecho {

// --- IpKey -------------------------------------------------------------------------------

IpKey IpKey::from(const in_addr& a) noexcept {
    IpKey k{};
    k.bytes[10] = 0xff;
    k.bytes[11] = 0xff;
    std::memcpy(k.bytes + 12, &a, 4);
    return k;
}

IpKey IpKey::from(const in6_addr& a) noexcept {
    IpKey k{};
    std::memcpy(k.bytes, &a, 16);
    return k;
}

IpKey IpKey::from(const sockaddr* addr) noexcept {
    if (addr->sa_family == AF_INET) return from(reinterpret_cast<const sockaddr_in*>(addr)->sin_addr);
    if (addr->sa_family == AF_INET6) return from(reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr);
    return IpKey{};
}

bool IpKey::is_v4() const noexcept {
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(bytes, kMapped, 12) == 0;
}

// --- source rules ------------------------------------------------------------------------

bool is_reflection_port(std::uint16_t port) noexcept {
    switch (port) {
    case 0:   // cannot be answered properly
    case 7:   // echo
    case 13:  // daytime
    case 19:  // chargen
    case 37:  // time
        return true;
    default:
        return false;
    }
}

namespace {

std::uint16_t port_of(const sockaddr* addr) noexcept {
    if (addr->sa_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(addr)->sin_port);
    if (addr->sa_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(addr)->sin6_port);
    return 0;
}

}  // namespace

// A source no unicast host can send from, or a destination many hosts listen on.
bool is_non_unicast(const IpKey& k) noexcept {
    if (k.is_v4()) {
        const std::uint8_t first = k.bytes[12];
        const bool unspecified = k.bytes[12] == 0 && k.bytes[13] == 0 && k.bytes[14] == 0 && k.bytes[15] == 0;
        const bool broadcast = k.bytes[12] == 255 && k.bytes[13] == 255 && k.bytes[14] == 255 && k.bytes[15] == 255;
        const bool multicast = first >= 224 && first <= 239;
        return unspecified || broadcast || multicast;
    }
    static constexpr std::uint8_t kZero[16] = {};
    return k.bytes[0] == 0xff || std::memcmp(k.bytes, kZero, 16) == 0;  // multicast, ::
}

SourceVerdict judge_source(const sockaddr* source, const IpKey* destination, bool to_broadcast,
                           std::span<const std::uint16_t> own_ports) noexcept {
    if (to_broadcast || (destination != nullptr && is_non_unicast(*destination))) return SourceVerdict::NotUnicastTo;
    const std::uint16_t port = port_of(source);
    for (std::uint16_t own : own_ports) {
        if (port == own) return SourceVerdict::OwnPort;
    }
    if (is_reflection_port(port) || is_non_unicast(IpKey::from(source))) return SourceVerdict::Reflection;
    return SourceVerdict::Answer;
}

// --- SourceRateLimiter -------------------------------------------------------------------

struct alignas(64) SourceRateLimiter::Shard {
    std::mutex mutex;
    std::vector<Entry> entries;  // sets_per_shard_ sets of kWays entries
};

SourceRateLimiter::SourceRateLimiter(std::uint32_t rate, std::uint32_t burst, std::size_t capacity)
    : interval_ns_(std::max<std::uint64_t>(1, 1'000'000'000ULL / std::max<std::uint32_t>(rate, 1))),
      tolerance_ns_(interval_ns_ * std::max<std::uint32_t>(burst, 1)),
      secret_(0),
      sets_per_shard_(std::max<std::size_t>(1, capacity / (kShards * kWays))),
      shards_(std::make_unique<Shard[]>(kShards)) {
    std::random_device random;
    secret_ = (std::uint64_t{random()} << 32) | random();
    for (std::size_t i = 0; i < kShards; ++i) shards_[i].entries.assign(sets_per_shard_ * kWays, Entry{});
}

SourceRateLimiter::~SourceRateLimiter() = default;

std::uint64_t SourceRateLimiter::hash(const IpKey& key) const noexcept {
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    std::memcpy(&a, key.bytes, 8);
    std::memcpy(&b, key.bytes + 8, 8);
    // Two rounds of a 64-bit multiply-xorshift finaliser, keyed with the secret.
    std::uint64_t h = a ^ secret_;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h ^= b + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

bool SourceRateLimiter::allow(const IpKey& source, std::uint64_t now_ns) noexcept {
    // Time 0 marks unused entries; a clock that starts at 0 must not look like one.
    now_ns += 1;
    const std::uint64_t h = hash(source);
    Shard& shard = shards_[h % kShards];
    const std::size_t set = (h / kShards) % sets_per_shard_;
    std::lock_guard<std::mutex> lock(shard.mutex);
    Entry* ways = shard.entries.data() + set * kWays;
    Entry* entry = nullptr;
    for (std::size_t i = 0; i < kWays; ++i) {
        if (ways[i].tat != 0 && ways[i].key == source) {
            entry = &ways[i];
            break;
        }
    }
    if (entry == nullptr) {
        // New (or forgotten) source: its bucket is full. Take an entry whose bucket is full
        // again (or unused); failing that, the one closest to full, which forgets the least.
        entry = &ways[0];
        for (std::size_t i = 0; i < kWays; ++i) {
            if (ways[i].tat <= now_ns) {
                entry = &ways[i];
                break;
            }
            if (ways[i].tat < entry->tat) entry = &ways[i];
        }
        entry->key = source;
        entry->tat = now_ns;
    }
    const std::uint64_t next = std::max(entry->tat, now_ns) + interval_ns_;
    if (next - now_ns > tolerance_ns_) return false;
    entry->tat = next;
    return true;
}

}  // namespace tcpecho
