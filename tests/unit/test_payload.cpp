// The probe's payload stream and message framing: what the sender generates, the verifier
// must regenerate exactly, from any offset, in any chunking; and any change must be caught at
// the right byte.
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "lib/framer.hpp"
#include "test_catch.hpp"
#include "tools/message_stream.hpp"
#include "tools/payload.hpp"

using tcpecho::FramingMode;
using tcpecho::MessageShape;
using tcpecho::MessageStream;
using tcpecho::PayloadStream;

namespace {

std::vector<std::byte> generate(std::uint64_t seed, std::size_t n, bool line = false) {
    std::vector<std::byte> out(n);
    PayloadStream(seed, line).fill(out.data(), n);
    return out;
}

}  // namespace

TEST_CASE("payload: any chunking of fill gives the same bytes", "[payload]") {
    const auto whole = generate(7, 10'000);
    std::mt19937_64 rng(1);
    for (int round = 0; round < 50; ++round) {
        PayloadStream s(7);
        std::vector<std::byte> pieces(whole.size());
        std::size_t at = 0;
        while (at < pieces.size()) {
            std::size_t n = std::min<std::size_t>(pieces.size() - at, rng() % 70);
            s.fill(pieces.data() + at, n);
            at += n;
        }
        REQUIRE(pieces == whole);
        REQUIRE(s.offset() == whole.size());
    }
}

TEST_CASE("payload: seeds differ, and seek reaches any offset", "[payload]") {
    REQUIRE(generate(1, 64) != generate(2, 64));
    const auto whole = generate(9, 4096);
    for (std::size_t offset : {0UL, 1UL, 7UL, 8UL, 9UL, 1000UL, 4095UL}) {
        PayloadStream s(9);
        s.seek(offset);
        std::vector<std::byte> tail(whole.size() - offset);
        s.fill(tail.data(), tail.size());
        REQUIRE(std::equal(tail.begin(), tail.end(), whole.begin() + static_cast<std::ptrdiff_t>(offset)));
    }
}

TEST_CASE("payload: verify finds the first changed byte at every position", "[payload]") {
    const auto good = generate(3, 300);
    for (std::size_t start : {0UL, 3UL}) {  // aligned and unaligned stream offsets
        for (std::size_t at = start; at < good.size(); ++at) {
            auto bad = good;
            bad[at] ^= std::byte{0x01};
            PayloadStream v(3);
            v.skip(start);
            std::size_t got = v.verify(bad.data() + start, bad.size() - start);
            REQUIRE(got == at - start);
            REQUIRE(v.offset() == at);
        }
        PayloadStream v(3);
        v.skip(start);
        REQUIRE(v.verify(good.data() + start, good.size() - start) == good.size() - start);
    }
}

TEST_CASE("payload: a shifted, duplicated or swapped chunk does not line up", "[payload]") {
    const auto good = generate(11, 1 << 16);
    auto shifted = std::vector<std::byte>(good.begin() + 1, good.end());  // one byte dropped at 0
    PayloadStream v(11);
    REQUIRE(v.verify(shifted.data(), shifted.size()) < 8);
}

TEST_CASE("payload: line mode never produces the delimiter", "[payload]") {
    const auto plain = generate(5, 1 << 20);
    const auto line = generate(5, 1 << 20, true);
    std::size_t changed = 0;
    for (std::size_t i = 0; i < plain.size(); ++i) {
        REQUIRE(line[i] != std::byte{'\n'});
        // Only bit 5 is forced (0x0a has it clear); the other seven stay random.
        REQUIRE((line[i] | std::byte{0x20}) == (plain[i] | std::byte{0x20}));
        REQUIRE((line[i] & std::byte{0x20}) == std::byte{0x20});
        if (line[i] != plain[i]) ++changed;
    }
    REQUIRE(changed > plain.size() / 3);  // about half the bytes: the mapping really ran
    // And the verifier agrees with itself in line mode, from unaligned offsets too.
    PayloadStream v(5, true);
    v.skip(3);
    REQUIRE(v.verify(line.data() + 3, line.size() - 3) == line.size() - 3);
}

TEST_CASE("message stream: framing per mode", "[payload]") {
    SECTION("length: big-endian header with the payload size") {
        MessageStream s(MessageShape{FramingMode::Length, 5, 5}, 1);
        REQUIRE(s.message_size() == 9);
        std::byte out[9];
        s.fill(out, 9);
        REQUIRE(tcpecho::read_length_header(out) == 5);
        REQUIRE(s.at_end());
        s.next_message();
        REQUIRE(s.stream_offset() == 9);
        REQUIRE(s.message_index() == 1);
    }
    SECTION("line: payload then one newline, none inside") {
        MessageStream s(MessageShape{FramingMode::Line, 300, 300}, 2);
        std::vector<std::byte> out(301);
        s.fill(out.data(), out.size());
        REQUIRE(out.back() == std::byte{'\n'});
        REQUIRE(std::count(out.begin(), out.end(), std::byte{'\n'}) == 1);
    }
    SECTION("empty payloads are valid frames in length and line mode") {
        MessageStream l(MessageShape{FramingMode::Length, 0, 0}, 3);
        REQUIRE(l.message_size() == 4);
        MessageStream n(MessageShape{FramingMode::Line, 0, 0}, 3);
        REQUIRE(n.message_size() == 1);
    }
    SECTION("sizes in a range are drawn per message, reproducibly, within bounds") {
        MessageStream a(MessageShape{FramingMode::Raw, 10, 20}, 4);
        MessageStream b(MessageShape{FramingMode::Raw, 10, 20}, 4);
        bool varied = false;
        std::uint64_t first = a.message_size();
        std::vector<std::byte> buf(20);
        for (int i = 0; i < 200; ++i) {
            REQUIRE(a.message_size() == b.message_size());
            REQUIRE(a.message_size() >= 10);
            REQUIRE(a.message_size() <= 20);
            varied = varied || a.message_size() != first;
            a.fill(buf.data(), a.message_size());
            b.fill(buf.data(), b.message_size());
            a.next_message();
            b.next_message();
        }
        REQUIRE(varied);
    }
}

TEST_CASE("message stream: verify regenerates what fill produced, in any chunking", "[payload]") {
    for (FramingMode mode : {FramingMode::Raw, FramingMode::Length, FramingMode::Line}) {
        MessageShape shape{mode, 0, 100};
        if (mode == FramingMode::Raw) shape.size_min = 1;
        MessageStream tx(shape, 77);
        std::vector<std::byte> wire;
        std::vector<std::uint64_t> sizes;
        for (int m = 0; m < 100; ++m) {
            std::vector<std::byte> msg(tx.message_size());
            tx.fill(msg.data(), msg.size());
            sizes.push_back(msg.size());
            wire.insert(wire.end(), msg.begin(), msg.end());
            tx.next_message();
        }
        std::mt19937_64 rng(static_cast<unsigned>(mode));
        MessageStream rx(shape, 77);
        std::size_t at = 0;
        std::size_t messages = 0;
        while (at < wire.size()) {
            std::size_t n = std::min<std::size_t>({wire.size() - at, rng() % 50 + 1, rx.remaining()});
            REQUIRE(rx.verify(wire.data() + at, n) == n);
            at += n;
            if (rx.at_end()) {
                REQUIRE(rx.message_size() == sizes[messages]);
                ++messages;
                rx.next_message();
            }
        }
        REQUIRE(messages == sizes.size());

        // Every single-byte change is found at its offset, header and delimiter included.
        for (std::size_t bad_at = 0; bad_at < 300 && bad_at < wire.size(); ++bad_at) {
            auto bad = wire;
            bad[bad_at] ^= std::byte{0x20};
            MessageStream v(shape, 77);
            std::size_t pos = 0;
            for (;;) {
                std::size_t n = static_cast<std::size_t>(v.remaining());
                std::size_t ok = v.verify(bad.data() + pos, n);
                if (ok != n) {
                    REQUIRE(pos + ok == bad_at);
                    REQUIRE(v.stream_offset() == bad_at);
                    break;
                }
                pos += n;
                v.next_message();
            }
        }
    }
}

TEST_CASE("message stream: rewind after a partial send regenerates the same bytes", "[payload]") {
    for (FramingMode mode : {FramingMode::Raw, FramingMode::Length, FramingMode::Line}) {
        MessageShape shape{mode, 50, 50};
        MessageStream ref(shape, 5);
        std::vector<std::byte> expect(ref.message_size() * 2);
        ref.fill(expect.data(), ref.message_size());
        const std::size_t first = ref.message_size();
        ref.next_message();
        ref.fill(expect.data() + first, ref.message_size());

        MessageStream s(shape, 5);
        std::vector<std::byte> got(expect.size());
        // Send 10 bytes, "the kernel takes 3", rewind to 3, and so on through two messages.
        std::size_t base = 0;
        for (int m = 0; m < 2; ++m) {
            while (!s.at_end()) {
                std::uint64_t pos = s.position();
                std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(10, s.remaining()));
                s.fill(got.data() + base + pos, want);
                s.rewind_to(pos + (want + 2) / 3);
            }
            base += s.message_size();
            s.next_message();
        }
        REQUIRE(got == expect);
    }
}
