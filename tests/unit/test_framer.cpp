// Framer unit tests: every sample stream is fed the way TCP may deliver it — as one read (many
// frames per read), split at every byte position into two reads, into three reads at every pair
// of positions (short streams), one byte per read, and in seeded random chunks — and must yield
// exactly the expected frames, in order, each as soon as its last byte has arrived and never
// before.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "lib/framer.hpp"
#include "test_catch.hpp"

using tcpecho::FrameResult;
using tcpecho::Framer;
using tcpecho::FramingMode;
using Status = tcpecho::FrameResult::Status;

namespace {

std::vector<std::byte> to_bytes(std::string_view s) {
    std::vector<std::byte> out(s.size());
    std::transform(s.begin(), s.end(), out.begin(), [](char c) { return static_cast<std::byte>(c); });
    return out;
}

std::span<const std::byte> bytes_of(std::string_view s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::string header(std::uint32_t length) {
    std::byte h[tcpecho::kLengthHeaderSize];
    tcpecho::write_length_header(h, length);
    return {reinterpret_cast<const char*>(h), sizeof h};
}

// A length-mode frame as sent on the wire: 4-byte big-endian payload length, then the payload.
std::string length_frame(std::string_view payload) {
    return header(static_cast<std::uint32_t>(payload.size())) + std::string(payload);
}

std::string concat(const std::vector<std::string>& frames) {
    std::string out;
    for (const std::string& f : frames) out += f;
    return out;
}

// Deterministic filler with every byte value, including '\n' only where asked for.
std::string pattern(std::size_t n, bool allow_newline) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        auto c = static_cast<char>((i * 7 + 3) % 256);
        if (!allow_newline && c == '\n') c = 'N';
        s[i] = c;
    }
    return s;
}

std::string describe_pieces(const std::vector<std::size_t>& pieces) {
    std::ostringstream out;
    out << pieces.size() << " piece(s):";
    std::size_t shown = 0;
    for (std::size_t p : pieces) {
        if (++shown > 40) {
            out << " ...";
            break;
        }
        out << ' ' << p;
    }
    return out.str();
}

// What the daemon does with one connection's input: accumulate reads, repeatedly extract from
// the not-yet-consumed tail with a persistent `scanned` cursor, hand Complete frames on, stop
// for good at TooLarge (the daemon closes the connection).
class Driver {
public:
    explicit Driver(const Framer& framer) : framer_(framer) {}

    // Feeds one read. Returns "" or a description of a contract violation.
    std::string feed(std::string_view piece) {
        if (too_large_) return "fed after TooLarge";
        fed_ += piece.size();
        const auto b = to_bytes(piece);
        input_.insert(input_.end(), b.begin(), b.end());
        for (;;) {
            std::span<const std::byte> tail(input_.data() + consumed_, input_.size() - consumed_);
            FrameResult r = framer_.extract(tail, scanned_);
            if (r.status == Status::Complete) {
                if (r.size == 0 || r.size > tail.size()) {
                    return "Complete(" + std::to_string(r.size) + ") with " + std::to_string(tail.size()) +
                           " bytes available";
                }
                frames_.emplace_back(reinterpret_cast<const char*>(tail.data()), r.size);
                consumed_ += r.size;
                if (framer_.mode() == FramingMode::Line && scanned_ != 0) {
                    return "scanned = " + std::to_string(scanned_) + " after a Complete (should be reset to 0)";
                }
                continue;
            }
            if (r.status == Status::TooLarge) {
                too_large_ = r;
                too_large_fed_ = fed_;
                return {};
            }
            // NeedMore. Line mode has searched everything it was given.
            if (framer_.mode() == FramingMode::Line && scanned_ != tail.size()) {
                return "NeedMore with scanned = " + std::to_string(scanned_) + " but " + std::to_string(tail.size()) +
                       " bytes pending";
            }
            return {};
        }
    }

    [[nodiscard]] const std::vector<std::string>& frames() const { return frames_; }
    [[nodiscard]] std::size_t pending() const { return input_.size() - consumed_; }
    [[nodiscard]] std::size_t scanned() const { return scanned_; }
    [[nodiscard]] std::size_t fed() const { return fed_; }
    [[nodiscard]] const std::optional<FrameResult>& too_large() const { return too_large_; }
    [[nodiscard]] std::size_t too_large_fed() const { return too_large_fed_; }

private:
    Framer framer_;
    std::vector<std::byte> input_;
    std::size_t consumed_ = 0;
    std::size_t scanned_ = 0;
    std::size_t fed_ = 0;
    std::vector<std::string> frames_;
    std::optional<FrameResult> too_large_;
    std::size_t too_large_fed_ = 0;
};

// What a stream must produce. For length mode `error_at` is the number of bytes after which
// TooLarge must be reported (at the first read that brings the total to at least that much).
struct Expected {
    std::vector<std::string> frames;
    std::optional<std::uint64_t> error_size;  // exact TooLarge size, if checked
    std::size_t error_at = 0;                 // 0 = no TooLarge expected
    std::uint64_t error_min_size = 0;         // TooLarge size must be at least this
};

// Feeds `stream` in `pieces` and returns "" if it produced exactly `expected`, else a description
// of the first discrepancy. Plain code, no Catch assertions: it runs tens of thousands of times.
std::string run_pieces(const Framer& framer, std::string_view stream, const std::vector<std::size_t>& pieces,
                       const Expected& expected) {
    const bool raw = framer.mode() == FramingMode::Raw;
    std::vector<std::size_t> ends;  // where each expected frame ends in the stream
    std::size_t end = 0;
    for (const std::string& f : expected.frames) ends.push_back(end += f.size());

    Driver d(framer);
    std::size_t fed = 0;
    std::size_t piece_no = 0;
    for (std::size_t len : pieces) {
        std::string_view piece = stream.substr(fed, len);
        fed += len;
        std::string problem = d.feed(piece);
        if (!problem.empty()) return "read " + std::to_string(piece_no) + ": " + problem;
        std::string where = "after read " + std::to_string(piece_no) + " (" + std::to_string(fed) + " bytes fed): ";
        ++piece_no;

        if (raw) {
            // Raw: every read is echoed as it came.
            if (d.frames().size() != piece_no || d.frames().back() != piece) {
                return where + "raw mode did not hand on exactly this read";
            }
            continue;
        }
        if (expected.error_at != 0 && fed >= expected.error_at) {
            if (!d.too_large()) return where + "no TooLarge reported";
            if (d.too_large_fed() != fed) return where + "TooLarge reported late";
            if (expected.error_size && d.too_large()->size != *expected.error_size) {
                return where + "TooLarge size " + std::to_string(d.too_large()->size) + ", expected " +
                       std::to_string(*expected.error_size);
            }
            if (d.too_large()->size < expected.error_min_size) {
                return where + "TooLarge size " + std::to_string(d.too_large()->size) + " below " +
                       std::to_string(expected.error_min_size);
            }
            if (d.frames() != expected.frames) return where + "frames before the error differ";
            return {};
        }
        if (d.too_large()) return where + "unexpected TooLarge(" + std::to_string(d.too_large()->size) + ")";
        // Exactly the frames whose last byte has arrived, no more (nothing of an incomplete frame).
        auto complete = static_cast<std::size_t>(std::upper_bound(ends.begin(), ends.end(), fed) - ends.begin());
        if (d.frames().size() != complete) {
            return where + std::to_string(d.frames().size()) + " frames extracted, expected " +
                   std::to_string(complete);
        }
        for (std::size_t i = 0; i < complete; ++i) {
            if (d.frames()[i] != expected.frames[i]) return where + "frame " + std::to_string(i) + " differs";
        }
        if (d.pending() != fed - (complete == 0 ? 0 : ends[complete - 1])) return where + "pending bytes wrong";
    }
    if (fed != stream.size()) return "test bug: pieces cover " + std::to_string(fed) + " bytes";
    if (expected.error_at != 0) return "stream ended without TooLarge";
    if (!raw && d.frames().size() != expected.frames.size()) return "not all frames extracted at end of stream";
    return {};
}

// The chunkings every stream is fed in.
std::vector<std::vector<std::size_t>> chunkings(std::size_t n, std::uint32_t seed) {
    std::vector<std::vector<std::size_t>> out;
    out.push_back({n});                             // one read: many frames per read
    out.emplace_back(n, std::size_t{1});            // one byte per read
    for (std::size_t k = 1; k < n; ++k) out.push_back({k, n - k});  // every split point
    if (n <= 96) {                                  // every pair of split points
        for (std::size_t i = 1; i < n; ++i) {
            for (std::size_t j = i + 1; j < n; ++j) out.push_back({i, j - i, n - j});
        }
    }
    std::mt19937 rng(seed);
    for (int round = 0; round < 200; ++round) {
        std::size_t max_piece = 1 + rng() % std::max<std::size_t>(1, n / 2);
        std::vector<std::size_t> pieces;
        std::size_t left = n;
        while (left > 0) {
            std::size_t p = std::min<std::size_t>(left, 1 + rng() % max_piece);
            pieces.push_back(p);
            left -= p;
        }
        out.push_back(std::move(pieces));
    }
    return out;
}

// Runs every chunking; reports the first failing one (not thousands).
void check_all_chunkings(const Framer& framer, const std::string& stream, const Expected& expected) {
    REQUIRE(!stream.empty());
    if (framer.mode() != FramingMode::Raw && expected.error_at == 0) REQUIRE(concat(expected.frames) == stream);
    std::size_t runs = 0;
    std::string failure;
    std::string failing_chunking;
    for (const auto& pieces : chunkings(stream.size(), 20240607U)) {
        ++runs;
        std::string problem = run_pieces(framer, stream, pieces, expected);
        if (!problem.empty()) {
            failure = problem;
            failing_chunking = describe_pieces(pieces);
            break;
        }
    }
    INFO("mode " << tcpecho::to_string(framer.mode()) << ", stream of " << stream.size() << " bytes, "
                 << expected.frames.size() << " frames, " << runs << " chunkings run");
    INFO("chunking: " << failing_chunking);
    CHECK(failure == "");
}

Expected frames_only(std::vector<std::string> frames) { return Expected{std::move(frames), std::nullopt, 0, 0}; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Names, headers, sizes

TEST_CASE("framing mode names round-trip", "[framer]") {
    for (FramingMode m : {FramingMode::Raw, FramingMode::Fixed, FramingMode::Length, FramingMode::Line}) {
        auto parsed = tcpecho::parse_framing_mode(tcpecho::to_string(m));
        REQUIRE(parsed.has_value());
        CHECK(*parsed == m);
    }
    CHECK(tcpecho::to_string(FramingMode::Raw) == "raw");
    CHECK(tcpecho::to_string(FramingMode::Fixed) == "fixed");
    CHECK(tcpecho::to_string(FramingMode::Length) == "length");
    CHECK(tcpecho::to_string(FramingMode::Line) == "line");
    for (std::string_view bad : {"", "RAW", "Line", "lines", "len", " raw", "raw "}) {
        INFO("name \"" << std::string(bad) << "\"");
        CHECK_FALSE(tcpecho::parse_framing_mode(bad).has_value());
    }
}

TEST_CASE("length header is 4 bytes big-endian and round-trips", "[framer]") {
    std::byte h[4];
    tcpecho::write_length_header(h, 0x01020304U);
    CHECK(h[0] == std::byte{0x01});
    CHECK(h[1] == std::byte{0x02});
    CHECK(h[2] == std::byte{0x03});
    CHECK(h[3] == std::byte{0x04});
    for (std::uint32_t v : {0U, 1U, 0xFFU, 0x100U, 0x0A0AU, 0x80000000U, 0x7FFFFFFFU, 0xFFFFFFFFU, 16777216U}) {
        tcpecho::write_length_header(h, v);
        CHECK(tcpecho::read_length_header(h) == v);
    }
    const std::byte all_ones[4] = {std::byte{0xFF}, std::byte{0xFF}, std::byte{0xFF}, std::byte{0xFF}};
    CHECK(tcpecho::read_length_header(all_ones) == 0xFFFFFFFFU);
}

TEST_CASE("largest_frame includes header and delimiter", "[framer]") {
    CHECK(Framer(FramingMode::Raw, 10, 100).largest_frame() == 0);
    CHECK(Framer(FramingMode::Fixed, 10, 100).largest_frame() == 10);
    CHECK(Framer(FramingMode::Length, 10, 100).largest_frame() == 104);
    CHECK(Framer(FramingMode::Line, 10, 100).largest_frame() == 101);
    // No 32-bit overflow at the top of the range.
    CHECK(Framer(FramingMode::Length, 1, 0xFFFFFFFFU).largest_frame() == 0xFFFFFFFFULL + 4);
    CHECK(Framer(FramingMode::Line, 1, 0xFFFFFFFFU).largest_frame() == 0x100000000ULL);
    Framer f(FramingMode::Fixed, 7, 9);
    CHECK(f.mode() == FramingMode::Fixed);
    CHECK(f.frame_size() == 7);
    CHECK(f.max_frame() == 9);
}

TEST_CASE("empty input is never a frame", "[framer]") {
    const std::byte storage[1] = {};
    for (FramingMode m : {FramingMode::Raw, FramingMode::Fixed, FramingMode::Length, FramingMode::Line}) {
        INFO("mode " << tcpecho::to_string(m));
        std::size_t scanned = 0;
        FrameResult r = Framer(m, 4, 100).extract(std::span<const std::byte>(storage, 0), scanned);
        CHECK(r.status == Status::NeedMore);
        CHECK(scanned == 0);
    }
}

TEST_CASE("line mode on an empty span whose data() is null", "[framer][regression]") {
    // Before 310802c framer.cpp called memchr(nullptr, '\n', 0), undefined behaviour that only
    // -fsanitize=undefined (UBSAN_OPTIONS=halt_on_error=1) turns into a failure. The daemon always
    // passes a non-null pointer; the probe and the fuzzers need not.
    std::size_t scanned = 0;
    FrameResult r = Framer(FramingMode::Line, 0, 100).extract(std::span<const std::byte>(), scanned);
    CHECK(r.status == Status::NeedMore);
    CHECK(scanned == 0);
}

// ---------------------------------------------------------------------------------------------
// Every split point of sample streams

TEST_CASE("raw mode hands on every read as it came, at every split point", "[framer][splits]") {
    Framer raw(FramingMode::Raw, 0, 16);
    // max_frame does not limit raw mode: a read may be far larger.
    check_all_chunkings(raw, "x", frames_only({}));
    check_all_chunkings(raw, pattern(300, true), frames_only({}));
    check_all_chunkings(raw, "line one\nline two\n\n" + length_frame("abc"), frames_only({}));
}

TEST_CASE("fixed mode at every split point", "[framer][splits]") {
    SECTION("frames of 1 byte") {
        check_all_chunkings(Framer(FramingMode::Fixed, 1, 16), "abcdefgh",
                            frames_only({"a", "b", "c", "d", "e", "f", "g", "h"}));
    }
    SECTION("a single frame") {
        check_all_chunkings(Framer(FramingMode::Fixed, 7, 16), "1234567", frames_only({"1234567"}));
    }
    SECTION("several 7-byte frames, with newlines and NULs inside") {
        std::string s = pattern(7 * 9, true);
        std::vector<std::string> frames;
        for (std::size_t i = 0; i < s.size(); i += 7) frames.push_back(s.substr(i, 7));
        check_all_chunkings(Framer(FramingMode::Fixed, 7, 16), s, frames_only(frames));
    }
    SECTION("frames larger than max_frame (max_frame does not apply to fixed mode)") {
        std::string s = pattern(3 * 300, true);
        check_all_chunkings(Framer(FramingMode::Fixed, 300, 16), s,
                            frames_only({s.substr(0, 300), s.substr(300, 300), s.substr(600, 300)}));
    }
}

TEST_CASE("length mode at every split point", "[framer][splits]") {
    Framer length(FramingMode::Length, 0, 1000);
    SECTION("one frame") { check_all_chunkings(length, length_frame("hello"), frames_only({length_frame("hello")})); }
    SECTION("zero-length payload alone") {
        check_all_chunkings(length, length_frame(""), frames_only({length_frame("")}));
    }
    SECTION("frames of different sizes, zero-length and 1-byte payloads among them") {
        std::vector<std::string> frames = {
            length_frame("hello"),
            length_frame(""),
            length_frame("x"),
            length_frame(""),
            length_frame(std::string("\n\0\xff", 3)),  // payload bytes that look like other framings
            length_frame(pattern(266, true)),          // header 00 00 01 0A: a '\n' inside the header
            length_frame("tail"),
        };
        check_all_chunkings(length, concat(frames), frames_only(frames));
    }
    SECTION("short stream of tiny frames: every pair of split points") {
        std::vector<std::string> frames = {length_frame("a"), length_frame(""), length_frame("bc"), length_frame("")};
        check_all_chunkings(length, concat(frames), frames_only(frames));
    }
    SECTION("payload of exactly max_frame") {
        std::vector<std::string> frames = {length_frame(pattern(1000, true)), length_frame("z")};
        check_all_chunkings(length, concat(frames), frames_only(frames));
    }
}

TEST_CASE("line mode at every split point", "[framer][splits]") {
    Framer line(FramingMode::Line, 0, 1000);
    SECTION("one line") { check_all_chunkings(line, "hello\n", frames_only({"hello\n"})); }
    SECTION("an empty line alone") { check_all_chunkings(line, "\n", frames_only({"\n"})); }
    SECTION("lines of different sizes, empty lines and 1-byte lines among them") {
        std::vector<std::string> frames = {
            "hello\n", "\n", "x\n", "\n", "\n", "crlf\r\n", std::string("nul\0byte\n", 9), pattern(250, false) + "\n",
            "last\n",
        };
        check_all_chunkings(line, concat(frames), frames_only(frames));
    }
    SECTION("short stream: every pair of split points") {
        std::vector<std::string> frames = {"a\n", "\n", "bc\n", "\n", "def\n"};
        check_all_chunkings(line, concat(frames), frames_only(frames));
    }
    SECTION("line of exactly max_frame bytes plus its newline") {
        std::vector<std::string> frames = {pattern(1000, false) + "\n", "ok\n"};
        check_all_chunkings(line, concat(frames), frames_only(frames));
    }
}

// ---------------------------------------------------------------------------------------------
// Too large: validated before any payload is buffered

TEST_CASE("length mode: oversized header is TooLarge as soon as its 4 bytes are present", "[framer][too-large]") {
    Framer length(FramingMode::Length, 0, 100);
    std::size_t scanned = 0;

    SECTION("0xFFFFFFFF: NeedMore for 1..3 header bytes, TooLarge at 4, nothing to allocate") {
        std::string h = header(0xFFFFFFFFU);
        for (std::size_t n = 1; n < 4; ++n) {
            FrameResult r = length.extract(bytes_of(std::string_view(h).substr(0, n)), scanned);
            CHECK(r.status == Status::NeedMore);
        }
        FrameResult r = length.extract(bytes_of(h), scanned);
        CHECK(r.status == Status::TooLarge);
        CHECK(r.size == 0xFFFFFFFFU);
    }
    SECTION("max_frame + 1: TooLarge with the declared size, without any payload") {
        FrameResult r = length.extract(bytes_of(header(101)), scanned);
        CHECK(r.status == Status::TooLarge);
        CHECK(r.size == 101);
    }
    SECTION("exactly max_frame is accepted") {
        std::string frame = length_frame(pattern(100, true));
        FrameResult r = length.extract(bytes_of(std::string_view(frame).substr(0, 4)), scanned);
        CHECK(r.status == Status::NeedMore);
        r = length.extract(bytes_of(std::string_view(frame).substr(0, 103)), scanned);
        CHECK(r.status == Status::NeedMore);
        r = length.extract(bytes_of(frame), scanned);
        CHECK(r.status == Status::Complete);
        CHECK(r.size == 104);
        r = length.extract(bytes_of(frame + "more"), scanned);
        CHECK(r.status == Status::Complete);
        CHECK(r.size == 104);
    }
    SECTION("after good frames, at every split point") {
        std::vector<std::string> good = {length_frame("ab"), length_frame(""), length_frame(pattern(100, true))};
        for (std::uint32_t declared : {101U, 0x01000000U, 0xFFFFFFFFU}) {
            INFO("declared length " << declared);
            std::string stream = concat(good) + header(declared) + "some payload";
            check_all_chunkings(length, stream, Expected{good, declared, concat(good).size() + 4, 0});
        }
    }
}

TEST_CASE("line mode: a line longer than max_frame is TooLarge, even before its newline", "[framer][too-large]") {
    Framer line(FramingMode::Line, 0, 8);
    std::size_t scanned = 0;

    SECTION("exactly max_frame bytes plus newline is a frame") {
        FrameResult r = line.extract(bytes_of("12345678\n"), scanned);
        CHECK(r.status == Status::Complete);
        CHECK(r.size == 9);
        CHECK(scanned == 0);
    }
    SECTION("exactly max_frame bytes without newline is still NeedMore") {
        FrameResult r = line.extract(bytes_of("12345678"), scanned);
        CHECK(r.status == Status::NeedMore);
        CHECK(scanned == 8);
    }
    SECTION("max_frame + 1 bytes without newline is TooLarge") {
        FrameResult r = line.extract(bytes_of("123456789"), scanned);
        CHECK(r.status == Status::TooLarge);
        CHECK(r.size == 9);
    }
    SECTION("max_frame + 1 bytes with newline in the same read is TooLarge") {
        FrameResult r = line.extract(bytes_of("123456789\nok\n"), scanned);
        CHECK(r.status == Status::TooLarge);
        CHECK(r.size == 9);
    }
    SECTION("after good lines, at every split point") {
        std::vector<std::string> good = {"ab\n", "\n", "12345678\n"};
        // The 9th byte of the long line is the first that proves it too large.
        std::string stream = concat(good) + "123456789abc\nxy\n";
        check_all_chunkings(line, stream, Expected{good, std::nullopt, concat(good).size() + 9, 9});
    }
}

// ---------------------------------------------------------------------------------------------
// The scanned cursor

TEST_CASE("line mode remembers how far it scanned", "[framer][scanned]") {
    Framer line(FramingMode::Line, 0, 1 << 20);

    SECTION("a long partial line fed in pieces: scanned tracks its length, reset on Complete") {
        Driver d(line);
        std::string long_line = pattern(5000, false);
        for (std::size_t at = 0; at < long_line.size(); at += 1000) {
            REQUIRE(d.feed(std::string_view(long_line).substr(at, 1000)) == "");
            CHECK(d.frames().empty());
            CHECK(d.scanned() == at + 1000);
        }
        REQUIRE(d.feed("\nnext") == "");
        REQUIRE(d.frames().size() == 1);
        CHECK(d.frames()[0] == long_line + "\n");
        CHECK(d.scanned() == 4);  // the 4 bytes of "next"
    }
    SECTION("bytes before the cursor are not searched again") {
        // A caller-held cursor of 3 says "a\nb" was already searched: the '\n' inside it is not
        // found again, which is what makes a long partial line cost O(new bytes) per read.
        std::size_t scanned = 3;
        FrameResult r = line.extract(bytes_of("a\nbc"), scanned);
        CHECK(r.status == Status::NeedMore);
        CHECK(scanned == 4);
        scanned = 3;
        r = line.extract(bytes_of("a\nbc\n"), scanned);
        CHECK(r.status == Status::Complete);
        CHECK(r.size == 5);
        CHECK(scanned == 0);
    }
    SECTION("a cursor beyond the input is clamped") {
        std::size_t scanned = 100;
        FrameResult r = line.extract(bytes_of("abc"), scanned);
        CHECK(r.status == Status::NeedMore);
        CHECK(scanned == 3);
    }
}

TEST_CASE("fixed, length and raw modes leave the cursor alone", "[framer][scanned]") {
    std::size_t scanned = 0;
    std::string frame = length_frame("abc");
    CHECK(Framer(FramingMode::Length, 0, 100).extract(bytes_of(std::string_view(frame).substr(0, 5)), scanned).status ==
          Status::NeedMore);
    CHECK(Framer(FramingMode::Fixed, 8, 100).extract(bytes_of("abc"), scanned).status == Status::NeedMore);
    CHECK(Framer(FramingMode::Raw, 0, 100).extract(bytes_of("abc"), scanned).status == Status::Complete);
    CHECK(scanned == 0);
}
