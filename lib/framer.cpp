#include "lib/framer.hpp"

#include <cstring>

namespace tcpecho {

std::string_view to_string(FramingMode mode) noexcept {
    switch (mode) {
    case FramingMode::Raw:
        return "raw";
    case FramingMode::Fixed:
        return "fixed";
    case FramingMode::Length:
        return "length";
    case FramingMode::Line:
        return "line";
    }
    return "?";
}

std::optional<FramingMode> parse_framing_mode(std::string_view name) noexcept {
    if (name == "raw") return FramingMode::Raw;
    if (name == "fixed") return FramingMode::Fixed;
    if (name == "length") return FramingMode::Length;
    if (name == "line") return FramingMode::Line;
    return std::nullopt;
}

std::uint32_t read_length_header(const std::byte* p) noexcept {
    return (std::to_integer<std::uint32_t>(p[0]) << 24) | (std::to_integer<std::uint32_t>(p[1]) << 16) |
           (std::to_integer<std::uint32_t>(p[2]) << 8) | std::to_integer<std::uint32_t>(p[3]);
}

void write_length_header(std::byte* p, std::uint32_t length) noexcept {
    p[0] = static_cast<std::byte>(length >> 24);
    p[1] = static_cast<std::byte>(length >> 16);
    p[2] = static_cast<std::byte>(length >> 8);
    p[3] = static_cast<std::byte>(length);
}

std::uint64_t Framer::largest_frame() const noexcept {
    switch (mode_) {
    case FramingMode::Raw:
        return 0;
    case FramingMode::Fixed:
        return frame_size_;
    case FramingMode::Length:
        return std::uint64_t{max_frame_} + kLengthHeaderSize;
    case FramingMode::Line:
        return std::uint64_t{max_frame_} + 1;
    }
    return 0;
}

FrameResult Framer::extract(std::span<const std::byte> input, std::size_t& scanned) const noexcept {
    using S = FrameResult::Status;
    switch (mode_) {
    case FramingMode::Raw:
        if (input.empty()) return {S::NeedMore, 0};
        return {S::Complete, input.size()};

    case FramingMode::Fixed:
        if (input.size() < frame_size_) return {S::NeedMore, 0};
        return {S::Complete, frame_size_};

    case FramingMode::Length: {
        if (input.size() < kLengthHeaderSize) return {S::NeedMore, 0};
        // Validate the declared length before anything is buffered for it.
        std::uint32_t payload = read_length_header(input.data());
        if (payload > max_frame_) return {S::TooLarge, payload};
        std::uint64_t total = std::uint64_t{payload} + kLengthHeaderSize;
        if (input.size() < total) return {S::NeedMore, 0};
        return {S::Complete, total};
    }

    case FramingMode::Line: {
        std::size_t from = scanned < input.size() ? scanned : input.size();
        // memchr() with a null pointer is undefined even for 0 bytes (an empty span may be null).
        const void* nl = from < input.size() ? std::memchr(input.data() + from, '\n', input.size() - from) : nullptr;
        if (nl == nullptr) {
            scanned = input.size();
            // max_frame bounds the line without its delimiter.
            if (input.size() > max_frame_) return {S::TooLarge, input.size()};
            return {S::NeedMore, 0};
        }
        std::size_t line = static_cast<std::size_t>(static_cast<const std::byte*>(nl) - input.data());
        if (line > max_frame_) return {S::TooLarge, line};
        scanned = 0;
        return {S::Complete, line + 1};
    }
    }
    return {S::NeedMore, 0};
}

}  // namespace tcpecho
