// The probe's UDP datagrams (tools/udp_datagram.hpp): the header layout on the wire, that
// every single-byte change of a datagram is detected at its offset, short datagrams without
// a header; and the per-flow accounting (tools/udp_tracker.hpp): received, reordered,
// duplicated, lost, late, with bounded memory.
#include <cstddef>
#include <cstdint>
#include <set>
#include <vector>

#include "test_catch.hpp"
#include "tools/engine.hpp"
#include "tools/payload.hpp"
#include "tools/udp_datagram.hpp"
#include "tools/udp_tracker.hpp"

using namespace tcpecho::probe;
using namespace tcpecho::probe::udp;

namespace {

constexpr std::uint64_t kSeed = 4242;
constexpr std::uint64_t kSendNs = 0x0102030405060708ULL;

DatagramId id_for(std::uint32_t flow, std::uint64_t seq) { return {flow, connection_seed(kSeed, flow), seq}; }

std::vector<std::byte> datagram(std::size_t size, const DatagramId& id, std::uint64_t send_ns = kSendNs) {
    std::vector<std::byte> d(size);
    fill_datagram(d.data(), size, id, send_ns);
    return d;
}

Defect region(std::size_t size, std::size_t offset) {
    if (size < kHeaderSize || offset >= kHeaderSize) return Defect::Payload;
    if (offset < 4) return Defect::Magic;
    if (offset < 8) return Defect::Flow;
    if (offset < 16) return Defect::Seq;
    return Defect::SendTime;
}

}  // namespace

TEST_CASE("udp datagram: the header is big-endian at fixed offsets and round-trips", "[udp-datagram]") {
    const Header h{kMagic, 0xA1B2C3D4U, 0x1122334455667788ULL, 0x99AABBCCDDEEFF00ULL};
    std::byte raw[kHeaderSize];
    encode_header(h, raw);
    const unsigned char want[kHeaderSize] = {'T',  'C',  'U',  'D',  0xA1, 0xB2, 0xC3, 0xD4,
                                             0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                             0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF, 0x00};
    for (std::size_t i = 0; i < kHeaderSize; ++i) CHECK(std::to_integer<unsigned>(raw[i]) == want[i]);
    const Header back = decode_header(raw);
    CHECK(back.magic == h.magic);
    CHECK(back.flow == h.flow);
    CHECK(back.seq == h.seq);
    CHECK(back.send_ns == h.send_ns);

    const auto d = datagram(100, id_for(7, 12345));
    const Header in = decode_header(d.data());
    CHECK(in.magic == kMagic);
    CHECK(in.flow == 7);
    CHECK(in.seq == 12345);
    CHECK(in.send_ns == kSendNs);
}

TEST_CASE("udp datagram: the payload is the PayloadStream of (seed, flow, seq)", "[udp-datagram]") {
    const DatagramId id = id_for(3, 99);
    const auto d = datagram(1000, id);
    std::vector<std::byte> want(1000 - kHeaderSize);
    tcpecho::PayloadStream(datagram_seed(id.flow_seed, id.seq)).fill(want.data(), want.size());
    CHECK(std::equal(want.begin(), want.end(), d.begin() + kHeaderSize));
    // Shorter than a header: all of it is the start of the same stream.
    for (std::size_t size : {1U, 2U, 23U}) {
        const auto s = datagram(size, id);
        CHECK(std::equal(s.begin(), s.end(), want.begin()));
    }
    // Other datagrams, other flows, other seeds: other bytes.
    CHECK(datagram(1000, id_for(3, 100)) != d);
    CHECK(datagram(1000, id_for(4, 99)) != d);
    CHECK(datagram_seed(connection_seed(kSeed + 1, 3), 99) != datagram_seed(id.flow_seed, 99));
}

TEST_CASE("udp datagram: an exact echo checks out, at every size class", "[udp-datagram]") {
    for (std::size_t size : {0U, 1U, 7U, 23U, 24U, 25U, 31U, 32U, 1000U, 1472U, 65507U, 65535U}) {
        INFO("size " << size);
        const DatagramId id = id_for(1, size);
        const auto d = datagram(size, id);
        CHECK(check_datagram(d, size, id, kSendNs).defect == Defect::None);
        CHECK(check_datagram(d, size, id, std::nullopt).defect == Defect::None);
    }
}

TEST_CASE("udp datagram: every single-byte change is detected at its offset", "[udp-datagram]") {
    for (std::size_t size : {1U, 2U, 23U, 24U, 25U, 40U, 300U}) {
        const DatagramId id = id_for(2, 77);
        const auto good = datagram(size, id);
        for (std::size_t at = 0; at < size; ++at) {
            for (unsigned mask : {0x01U, 0x80U, 0xFFU}) {
                INFO("size " << size << ", offset " << at << ", mask " << mask);
                auto bad = good;
                bad[at] ^= std::byte(mask);
                const Check c = check_datagram(bad, size, id, kSendNs);
                CHECK(c.defect == region(size, at));
                CHECK(c.offset == at);
                if (at < kSendTimeOffset || at >= kHeaderSize || size < kHeaderSize) {
                    // Without a known send time, everything but that field is still checked.
                    const Check u = check_datagram(bad, size, id, std::nullopt);
                    CHECK(u.defect == region(size, at));
                    CHECK(u.offset == at);
                }
            }
        }
    }
}

TEST_CASE("udp datagram: a different send time is a defect only when it is known", "[udp-datagram]") {
    const DatagramId id = id_for(0, 5);
    const auto d = datagram(64, id, kSendNs + 1);
    const Check c = check_datagram(d, 64, id, kSendNs);
    CHECK(c.defect == Defect::SendTime);
    CHECK(c.offset == kSendTimeOffset + 7);  // big-endian: the last byte differs
    CHECK(check_datagram(d, 64, id, std::nullopt).defect == Defect::None);
}

TEST_CASE("udp datagram: wrong lengths", "[udp-datagram]") {
    const DatagramId id = id_for(0, 9);
    for (std::size_t size : {0U, 1U, 23U, 24U, 25U, 1000U}) {
        INFO("size " << size);
        const auto d = datagram(size, id);
        if (size > 0) {
            // Truncated by one, or to nothing: every byte present matches, the length does not.
            for (std::size_t cut : {size - 1, std::size_t{0}}) {
                const Check c = check_datagram(std::span(d.data(), cut), size, id, kSendNs);
                CHECK(c.defect == Defect::Length);
                CHECK(c.offset == cut);
            }
        }
        auto longer = d;
        longer.push_back(std::byte{0});
        const Check c = check_datagram(longer, size, id, kSendNs);
        CHECK(c.defect == Defect::Length);
        CHECK(c.offset == size);
    }
    // A different byte before the end wins over the length: it is the first difference.
    auto d = datagram(100, id);
    d[50] ^= std::byte{1};
    const Check c = check_datagram(std::span(d.data(), 80), 100, id, kSendNs);
    CHECK(c.defect == Defect::Payload);
    CHECK(c.offset == 50);
}

TEST_CASE("udp datagram: sizes drawn from a range are a function of the datagram", "[udp-datagram]") {
    const std::uint64_t fs = connection_seed(kSeed, 0);
    CHECK(datagram_size(1472, 1472, fs, 5) == 1472);
    CHECK(datagram_size(0, 0, fs, 5) == 0);
    std::set<std::size_t> seen;
    for (std::uint64_t seq = 0; seq < 2000; ++seq) {
        const std::size_t s = datagram_size(10, 30, fs, seq);
        REQUIRE(s >= 10);
        REQUIRE(s <= 30);
        CHECK(datagram_size(10, 30, fs, seq) == s);  // the verifier gets the same size back
        seen.insert(s);
    }
    CHECK(seen.size() == 21);  // every size in the range occurs
    CHECK(datagram_size(0, 65535, fs, 1) <= 65535);
}

TEST_CASE("udp tracker: in order, reordered, duplicated, never sent", "[udp-datagram]") {
    SeqTracker t;
    for (int i = 0; i < 4; ++i) t.on_sent(1000 + i, 100);
    CHECK(t.next_seq() == 4);
    CHECK(t.in_flight() == 4);
    CHECK(t.in_flight_bytes() == 400);
    CHECK(t.oldest_in_flight() == 0U);
    CHECK(t.lookup(4).kind == SeqTracker::Lookup::Kind::NeverSent);
    CHECK(t.lookup(1ULL << 40).kind == SeqTracker::Lookup::Kind::NeverSent);

    auto l = t.lookup(1);
    CHECK(l.kind == SeqTracker::Lookup::Kind::Known);
    CHECK(l.state == SeqTracker::State::InFlight);
    CHECK(l.send_ns == 1001);
    CHECK(l.size == 100);

    CHECK_FALSE(t.on_received(1));
    CHECK(t.on_received(0));  // 1 came first
    CHECK_FALSE(t.on_received(3));
    CHECK(t.on_received(2));
    CHECK(t.in_flight() == 0);
    CHECK(t.in_flight_bytes() == 0);
    CHECK(!t.oldest_in_flight());
    CHECK(t.lookup(2).state == SeqTracker::State::Received);  // another echo of it: a duplicate
}

TEST_CASE("udp tracker: loss by deadline, late echoes, corrupted ones are not lost", "[udp-datagram]") {
    SeqTracker t;
    for (std::uint64_t i = 0; i < 5; ++i) t.on_sent(1000 * (i + 1), 10);  // sent at 1000, 2000, ... 5000
    t.on_corrupted(0);
    CHECK(t.in_flight() == 4);
    CHECK(t.lookup(0).state == SeqTracker::State::Corrupted);
    CHECK(t.oldest_in_flight() == 1U);
    CHECK(t.send_ns_of(1) == 2000);
    CHECK(t.expire(1999) == 0);
    CHECK(t.expire(3000) == 2);  // 1 and 2
    CHECK(t.lookup(1).state == SeqTracker::State::Lost);
    CHECK(t.lookup(2).state == SeqTracker::State::Lost);
    CHECK(t.oldest_in_flight() == 3U);
    CHECK_FALSE(t.on_received(4));
    CHECK(t.oldest_in_flight() == 3U);
    CHECK(t.expire(10000) == 1);  // 3; 4 is already back
    CHECK(t.in_flight() == 0);
    t.on_sent(20000, 10);
    t.on_sent(20001, 10);
    CHECK(t.abandon() == 2);
    CHECK(t.in_flight() == 0);
    CHECK(t.lookup(6).state == SeqTracker::State::Lost);
}

TEST_CASE("udp tracker: memory stays bounded, old datagrams are still classified", "[udp-datagram]") {
    SeqTracker t;
    const std::uint64_t n = 100000;
    for (std::uint64_t seq = 0; seq < n; ++seq) {
        t.on_sent(seq, 1);
        if (seq % 1000 == 500) {
            t.expire(seq);  // lost
        } else {
            t.on_received(seq);
        }
        REQUIRE(t.kept() <= SeqTracker::kHistory + 1);
    }
    CHECK(t.in_flight() == 0);
    // Dropped entries: a loss is remembered (a late echo), anything else was received.
    const auto old_lost = t.lookup(500);
    CHECK(old_lost.kind == SeqTracker::Lookup::Kind::Forgotten);
    CHECK(old_lost.state == SeqTracker::State::Lost);
    const auto old_received = t.lookup(501);
    CHECK(old_received.kind == SeqTracker::Lookup::Kind::Forgotten);
    CHECK(old_received.state == SeqTracker::State::Received);
    CHECK(t.lookup(n - 1).kind == SeqTracker::Lookup::Kind::Known);

    // One datagram stuck in flight keeps everything after it (it may still come back).
    SeqTracker s;
    s.on_sent(0, 1);
    for (std::uint64_t seq = 1; seq < 1000; ++seq) {
        s.on_sent(seq, 1);
        s.on_received(seq);
    }
    CHECK(s.kept() == 1000);
    CHECK(s.expire(0) == 1);
    CHECK(s.kept() <= SeqTracker::kHistory + 1);
}
