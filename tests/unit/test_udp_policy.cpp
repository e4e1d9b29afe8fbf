// The UDP guard rules and the per-source reply budget: pure code, fed addresses and a clock.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <string>

#include "test_catch.hpp"
#include "daemon/udp/udp_policy.hpp"

using tcpecho::IpKey;
using tcpecho::SourceRateLimiter;
using tcpecho::SourceVerdict;

namespace {

constexpr std::uint64_t kSecond = 1'000'000'000ULL;

sockaddr_storage v4(const char* ip, std::uint16_t port) {
    sockaddr_storage ss{};
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    REQUIRE(::inet_pton(AF_INET, ip, &a->sin_addr) == 1);
    return ss;
}

sockaddr_storage v6(const char* ip, std::uint16_t port) {
    sockaddr_storage ss{};
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    REQUIRE(::inet_pton(AF_INET6, ip, &a->sin6_addr) == 1);
    return ss;
}

IpKey key(const sockaddr_storage& ss) { return IpKey::from(reinterpret_cast<const sockaddr*>(&ss)); }

// A datagram from `source` to `local` (whose port is the daemon's only UDP port).
SourceVerdict judge(const sockaddr_storage& source, const sockaddr_storage& local) {
    const std::uint16_t own[] = {ntohs(reinterpret_cast<const sockaddr_in*>(&local)->sin_port)};
    const IpKey dest = key(local);
    return tcpecho::judge_source(reinterpret_cast<const sockaddr*>(&source), &dest, false, own);
}

}  // namespace

TEST_CASE("IPv4 and IPv4-mapped IPv6 addresses are one key", "[udp]") {
    CHECK(key(v4("192.0.2.1", 1)) == key(v6("::ffff:192.0.2.1", 2)));
    CHECK(key(v4("192.0.2.1", 1)).is_v4());
    CHECK_FALSE(key(v6("2001:db8::1", 1)).is_v4());
    CHECK_FALSE(key(v4("192.0.2.1", 1)) == key(v4("192.0.2.2", 1)));
}

TEST_CASE("echo/chargen-style source ports and port 0 are never answered", "[udp]") {
    const auto local = v4("127.0.0.1", 7007);
    for (std::uint16_t port : {0, 7, 13, 19, 37}) {
        INFO("source port " << port);
        CHECK(tcpecho::is_reflection_port(port));
        CHECK(judge(v4("127.0.0.1", port), local) == SourceVerdict::Reflection);
        CHECK(judge(v6("::1", port), local) == SourceVerdict::Reflection);
    }
    for (std::uint16_t port : {1, 6, 8, 17, 53, 1024, 7006, 7008, 65535}) {
        INFO("source port " << port);
        CHECK_FALSE(tcpecho::is_reflection_port(port));
        CHECK(judge(v4("127.0.0.1", port), local) == SourceVerdict::Answer);
    }
}

TEST_CASE("non-unicast sources are never answered", "[udp]") {
    const auto local = v4("127.0.0.1", 7007);
    CHECK(judge(v4("0.0.0.0", 5000), local) == SourceVerdict::Reflection);
    CHECK(judge(v4("255.255.255.255", 5000), local) == SourceVerdict::Reflection);
    CHECK(judge(v4("224.0.0.1", 5000), local) == SourceVerdict::Reflection);
    CHECK(judge(v4("239.255.255.250", 5000), local) == SourceVerdict::Reflection);
    CHECK(judge(v6("ff02::1", 5000), local) == SourceVerdict::Reflection);
    CHECK(judge(v6("::", 5000), local) == SourceVerdict::Reflection);
    CHECK(judge(v4("223.255.255.255", 5000), local) == SourceVerdict::Answer);
    CHECK(judge(v4("240.0.0.1", 5000), local) == SourceVerdict::Answer);
    CHECK(judge(v6("fe80::1", 5000), local) == SourceVerdict::Answer);
}

TEST_CASE("datagrams sent to broadcast or multicast addresses are never answered", "[udp]") {
    const auto client = v4("127.0.0.1", 40000);
    CHECK(judge(client, v4("255.255.255.255", 7007)) == SourceVerdict::NotUnicastTo);
    CHECK(judge(client, v4("224.0.0.1", 7007)) == SourceVerdict::NotUnicastTo);
    CHECK(judge(v6("::1", 40000), v6("ff02::1", 7007)) == SourceVerdict::NotUnicastTo);
    // A directed broadcast (127.255.255.255) looks unicast: the kernel's flag decides.
    const std::uint16_t own[] = {7007};
    const IpKey directed = key(v4("127.255.255.255", 7007));
    CHECK(tcpecho::judge_source(reinterpret_cast<const sockaddr*>(&client), &directed, true, own) ==
          SourceVerdict::NotUnicastTo);
    CHECK(tcpecho::judge_source(reinterpret_cast<const sockaddr*>(&client), &directed, false, own) ==
          SourceVerdict::Answer);
    // A socket bound to one address reports no destination: only the source is judged.
    CHECK(tcpecho::judge_source(reinterpret_cast<const sockaddr*>(&client), nullptr, false, own) ==
          SourceVerdict::Answer);
}

TEST_CASE("a source on any of the daemon's UDP ports is never answered", "[udp]") {
    // The listener's own address and port: answering would echo to itself forever.
    CHECK(judge(v4("127.0.0.1", 7007), v4("127.0.0.1", 7007)) == SourceVerdict::OwnPort);
    CHECK(judge(v6("::ffff:127.0.0.1", 7007), v4("127.0.0.1", 7007)) == SourceVerdict::OwnPort);
    CHECK(judge(v6("::1", 7007), v6("::1", 7007)) == SourceVerdict::OwnPort);
    // Another local address on a wildcard listener, or another host running tcpechod on the
    // same port: the same loop, one hop longer.
    CHECK(judge(v4("127.0.0.2", 7007), v4("127.0.0.1", 7007)) == SourceVerdict::OwnPort);
    CHECK(judge(v4("192.0.2.9", 7007), v4("127.0.0.1", 7007)) == SourceVerdict::OwnPort);
    // Another of the daemon's listeners.
    const std::uint16_t own[] = {7007, 9000};
    const auto from_other_listener = v4("127.0.0.1", 9000);
    const IpKey dest = key(v4("127.0.0.1", 7007));
    CHECK(tcpecho::judge_source(reinterpret_cast<const sockaddr*>(&from_other_listener), &dest, false, own) ==
          SourceVerdict::OwnPort);
    // A neighbouring port is an ordinary client.
    CHECK(judge(v4("127.0.0.1", 7008), v4("127.0.0.1", 7007)) == SourceVerdict::Answer);
    // The own-port rule wins when both apply (port 7 on port 7): one counter per drop.
    CHECK(judge(v4("127.0.0.1", 7), v4("127.0.0.1", 7)) == SourceVerdict::OwnPort);
}

TEST_CASE("rate limiter: a burst, then the rate", "[udp][ratelimit]") {
    SourceRateLimiter limiter(100, 10);  // 100/s: one reply per 10 ms, 10 at once
    const IpKey a = key(v4("192.0.2.1", 1000));
    std::uint64_t t = 5 * kSecond;
    for (int i = 0; i < 10; ++i) CHECK(limiter.allow(a, t));
    CHECK_FALSE(limiter.allow(a, t));
    CHECK_FALSE(limiter.allow(a, t + kSecond / 200));  // 5 ms: not yet a whole token
    CHECK(limiter.allow(a, t + kSecond / 100));         // 10 ms: one
    CHECK_FALSE(limiter.allow(a, t + kSecond / 100));
    // Over a long run the rate holds: 2 s at 1000 attempts/s gives 200 (+ what was left).
    t += kSecond;  // the bucket is full again
    int allowed = 0;
    for (int i = 0; i < 2000; ++i) allowed += limiter.allow(a, t + static_cast<std::uint64_t>(i) * kSecond / 1000);
    CHECK(allowed >= 10 + 199);
    CHECK(allowed <= 10 + 201);
}

TEST_CASE("rate limiter: sources have their own buckets", "[udp][ratelimit]") {
    SourceRateLimiter limiter(1, 2);
    const IpKey a = key(v4("192.0.2.1", 1));
    const IpKey b = key(v4("192.0.2.2", 1));
    const IpKey c = key(v6("2001:db8::1", 1));
    const std::uint64_t t = 0;  // a clock at zero must not confuse "unused"
    CHECK(limiter.allow(a, t));
    CHECK(limiter.allow(a, t));
    CHECK_FALSE(limiter.allow(a, t));
    CHECK(limiter.allow(b, t));
    CHECK(limiter.allow(c, t));
    CHECK(limiter.allow(c, t));
    CHECK_FALSE(limiter.allow(c, t));
    CHECK(limiter.allow(b, t));
    CHECK_FALSE(limiter.allow(b, t));
    // A port does not make a new source: the key is the address.
    CHECK_FALSE(limiter.allow(key(v4("192.0.2.1", 2)), t));
}

TEST_CASE("rate limiter: a flood of sources cannot grow it or lock out new ones", "[udp][ratelimit]") {
    // A small table (64 shards x 8 ways x 1 set = 512 entries) and 20,000 forged sources.
    SourceRateLimiter limiter(1, 1, 512);
    std::uint64_t t = kSecond;
    for (std::uint32_t i = 0; i < 20000; ++i) {
        in_addr addr{htonl(0x0a000000U + i)};
        INFO("source " << i);
        REQUIRE(limiter.allow(IpKey::from(addr), t));  // the first reply to a source is always allowed
    }
    // A source seen recently enough to still be remembered stays limited.
    const IpKey last = IpKey::from(in_addr{htonl(0x0a000000U + 19999)});
    CHECK_FALSE(limiter.allow(last, t));
    CHECK(limiter.allow(last, t + kSecond));
}
