#include "framer_harness.hpp"

#include <algorithm>
#include <cstring>
#include <span>
#include <vector>

#include "fuzz_common.hpp"

namespace tcpecho::fuzz {
namespace {

using Status = FrameResult::Status;

struct Event {
    Status status;
    std::uint64_t size;
    std::uint64_t offset;  // in the stream
    bool operator==(const Event&) const = default;
};

// What the stream yielded: complete frames, then either a too-large frame (last event) or
// `leftover` bytes of an incomplete frame at the end.
struct Outcome {
    std::vector<Event> events;
    std::uint64_t leftover = 0;
    [[nodiscard]] bool too_large() const noexcept {
        return !events.empty() && events.back().status == Status::TooLarge;
    }
};

// The definition of each mode, checked against the bytes of the stream.
class Spec {
public:
    Spec(const Framer& framer, std::span<const std::byte> stream) noexcept : framer_(framer), stream_(stream) {}

    void complete(std::uint64_t offset, std::uint64_t size) const {
        FUZZ_CHECK(size > 0);
        FUZZ_CHECK(offset + size <= stream_.size());
        FUZZ_CHECK(size <= framer_.largest_frame());
        const std::byte* f = stream_.data() + offset;
        switch (framer_.mode()) {
        case FramingMode::Raw:
            break;
        case FramingMode::Fixed:
            FUZZ_CHECK(size == framer_.frame_size());
            break;
        case FramingMode::Length:
            FUZZ_CHECK(size >= kLengthHeaderSize);
            FUZZ_CHECK(size == std::uint64_t{read_length_header(f)} + kLengthHeaderSize);
            FUZZ_CHECK(read_length_header(f) <= framer_.max_frame());
            break;
        case FramingMode::Line:
            FUZZ_CHECK(f[size - 1] == std::byte{'\n'});
            FUZZ_CHECK(std::memchr(f, '\n', size - 1) == nullptr);
            FUZZ_CHECK(size - 1 <= framer_.max_frame());
            break;
        }
    }

    // `size`: what the framer reported. `exact`: it must be the one the whole stream gives
    // (line mode may stop early when it sees more than max_frame bytes without a '\n').
    void too_large(std::uint64_t offset, std::uint64_t size) const {
        FUZZ_CHECK(offset <= stream_.size());
        std::size_t avail = stream_.size() - offset;
        const std::byte* f = stream_.data() + offset;
        switch (framer_.mode()) {
        case FramingMode::Raw:
        case FramingMode::Fixed:
            check_failed(__FILE__, __LINE__, "raw and fixed frames are never too large");
            break;
        case FramingMode::Length:
            FUZZ_CHECK(avail >= kLengthHeaderSize);
            FUZZ_CHECK(read_length_header(f) > framer_.max_frame());
            FUZZ_CHECK(size == read_length_header(f));
            break;
        case FramingMode::Line: {
            const void* nl = avail > 0 ? std::memchr(f, '\n', avail) : nullptr;
            std::size_t line = nl != nullptr ? static_cast<std::size_t>(static_cast<const std::byte*>(nl) - f) : avail;
            FUZZ_CHECK(line > framer_.max_frame());
            FUZZ_CHECK(size > framer_.max_frame());
            FUZZ_CHECK(size <= line);
            break;
        }
        }
    }

    // `leftover` bytes at the end of the stream are not a whole frame (nor a too-large one).
    void incomplete(std::uint64_t leftover) const {
        FUZZ_CHECK(leftover <= stream_.size());
        const std::byte* f = stream_.data() + (stream_.size() - leftover);
        switch (framer_.mode()) {
        case FramingMode::Raw:
            FUZZ_CHECK(leftover == 0);
            break;
        case FramingMode::Fixed:
            FUZZ_CHECK(leftover < framer_.frame_size());
            break;
        case FramingMode::Length:
            if (leftover >= kLengthHeaderSize) {
                FUZZ_CHECK(read_length_header(f) <= framer_.max_frame());
                FUZZ_CHECK(leftover < std::uint64_t{read_length_header(f)} + kLengthHeaderSize);
            }
            break;
        case FramingMode::Line:
            FUZZ_CHECK(leftover == 0 || std::memchr(f, '\n', leftover) == nullptr);
            FUZZ_CHECK(leftover <= framer_.max_frame());
            break;
        }
    }

private:
    const Framer& framer_;
    std::span<const std::byte> stream_;
};

// The whole stream as one read, straight from libFuzzer's buffer (exactly sized, so ASan
// catches a framer reading past the end).
Outcome frame_whole(const Framer& framer, std::span<const std::byte> stream) {
    Outcome out;
    std::size_t offset = 0;
    std::size_t scanned = 0;
    for (;;) {
        std::span<const std::byte> rest = stream.subspan(offset);
        FrameResult r = framer.extract(rest, scanned);
        if (r.status == Status::Complete) {
            FUZZ_CHECK(r.size > 0 && r.size <= rest.size());
            FUZZ_CHECK(scanned == 0);
            out.events.push_back({Status::Complete, r.size, offset});
            offset += static_cast<std::size_t>(r.size);
            continue;
        }
        if (r.status == Status::TooLarge) {
            out.events.push_back({Status::TooLarge, r.size, offset});
            return out;
        }
        FUZZ_CHECK(r.status == Status::NeedMore);
        FUZZ_CHECK(scanned <= rest.size());
        out.leftover = rest.size();
        return out;
    }
}

// The stream as the daemon sees it (daemon/connection.cpp, Connection::on_readable,
// frame_input and flush).
Outcome frame_chunked(const Framer& framer, std::span<const std::byte> stream, std::uint16_t seed, bool partial_sends) {
    static constexpr std::size_t kLargestChunk[8] = {1, 2, 3, 7, 16, 64, 512, 4096};
    std::size_t largest = kLargestChunk[seed & 7U];
    Rng rng(0x7463706563686FULL ^ seed);
    Outcome out;
    std::vector<std::byte> buf;  // the connection's input buffer
    std::size_t base = 0;        // stream offset of buf[0]
    std::size_t ready = 0;       // whole frames at the front of buf, not sent yet
    std::size_t scanned = 0;     // the connection's cursor, kept across reads
    std::size_t pos = 0;
    while (pos < stream.size()) {
        std::size_t n = std::min(stream.size() - pos, 1 + rng.below(largest));
        buf.insert(buf.end(), stream.begin() + static_cast<std::ptrdiff_t>(pos),
                   stream.begin() + static_cast<std::ptrdiff_t>(pos + n));
        pos += n;
        for (;;) {
            std::span<const std::byte> rest(buf.data() + ready, buf.size() - ready);
            FrameResult r = framer.extract(rest, scanned);
            if (r.status == Status::Complete) {
                FUZZ_CHECK(r.size > 0 && r.size <= rest.size());
                FUZZ_CHECK(scanned == 0);
                out.events.push_back({Status::Complete, r.size, base + ready});
                ready += static_cast<std::size_t>(r.size);
                continue;
            }
            if (r.status == Status::TooLarge) {
                out.events.push_back({Status::TooLarge, r.size, base + ready});
                return out;
            }
            FUZZ_CHECK(r.status == Status::NeedMore);
            FUZZ_CHECK(scanned <= rest.size());
            break;
        }
        // flush(): the socket takes all of the ready frames, or (partial_sends) only some bytes.
        std::size_t sent = partial_sends ? rng.below(ready + 1) : ready;
        buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(sent));
        base += sent;
        ready -= sent;
    }
    out.leftover = buf.size() - ready;
    return out;
}

}  // namespace

void fuzz_framer(FramingMode mode, const std::uint8_t* data, std::size_t size) {
    ByteReader in(data, size);
    std::uint16_t param = in.u16();
    std::uint8_t b2 = in.u8();
    std::uint8_t b3 = in.u8();
    std::uint32_t frame_size = 1;
    std::uint32_t max_frame = 1;
    if (mode == FramingMode::Fixed) {
        frame_size = 1 + param % 1024U;
    } else {
        max_frame = param == 0xFFFF ? 0xFFFFFFFFU : param;
    }
    const Framer framer(mode, frame_size, max_frame);
    std::span<const std::byte> stream(reinterpret_cast<const std::byte*>(in.rest()), in.rest_size());
    Spec spec(framer, stream);

    Outcome whole = frame_whole(framer, stream);
    Outcome chunked = frame_chunked(framer, stream, static_cast<std::uint16_t>(b2 | (b3 << 8)), (b3 & 0x80U) != 0);

    for (const Event& e : whole.events) {
        if (e.status == Status::Complete) spec.complete(e.offset, e.size);
    }
    if (whole.too_large()) {
        spec.too_large(whole.events.back().offset, whole.events.back().size);
    } else {
        spec.incomplete(whole.leftover);
    }

    // Same frames, and the same point of failure.
    FUZZ_CHECK(whole.events.size() == chunked.events.size());
    FUZZ_CHECK(whole.too_large() == chunked.too_large());
    std::size_t frames = whole.events.size() - (whole.too_large() ? 1 : 0);
    FUZZ_CHECK(std::equal(whole.events.begin(), whole.events.begin() + static_cast<std::ptrdiff_t>(frames),
                          chunked.events.begin()));
    if (whole.too_large()) {
        const Event& w = whole.events.back();
        const Event& c = chunked.events.back();
        FUZZ_CHECK(w.offset == c.offset);
        spec.too_large(c.offset, c.size);
        if (mode != FramingMode::Line) FUZZ_CHECK(w.size == c.size);
    } else {
        FUZZ_CHECK(whole.leftover == chunked.leftover);
    }
}

}  // namespace tcpecho::fuzz
