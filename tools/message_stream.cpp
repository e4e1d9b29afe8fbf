#include "tools/message_stream.hpp"

namespace tcpecho {

namespace {

// splitmix64 step for message sizes: independent of the payload stream, so a size range does
// not change which payload bytes are sent.
std::uint64_t next_random(std::uint64_t& state) noexcept {
    return splitmix64(state += kSplitMixGamma);
}

}  // namespace

MessageStream::MessageStream(const MessageShape& shape, std::uint64_t seed) noexcept
    : shape_(shape), payload_(seed, shape.mode == FramingMode::Line), size_rng_(seed ^ 0x5bd1e9955bd1e995ULL) {
    draw_size();
}

void MessageStream::draw_size() noexcept {
    std::uint64_t span = shape_.size_max - shape_.size_min;
    std::uint64_t payload = shape_.size_min;
    if (span != 0) payload += next_random(size_rng_) % (span + 1);
    size_ = payload + shape_.overhead();
}

void MessageStream::next_message() noexcept {
    base_ += size_;
    payload_base_ = payload_.offset();
    pos_ = 0;
    ++index_;
    draw_size();
}

MessageStream::Part MessageStream::part_at(std::uint64_t pos, std::uint64_t& left) const noexcept {
    switch (shape_.mode) {
    case FramingMode::Length:
        if (pos < kLengthHeaderSize) {
            left = kLengthHeaderSize - pos;
            return Part::Header;
        }
        break;
    case FramingMode::Line:
        if (pos == size_ - 1) {
            left = 1;
            return Part::Delimiter;
        }
        left = size_ - 1 - pos;
        return Part::Payload;
    case FramingMode::Raw:
    case FramingMode::Fixed:
        break;
    }
    left = size_ - pos;
    return Part::Payload;
}

void MessageStream::header_bytes(std::byte out[kLengthHeaderSize]) const noexcept {
    write_length_header(out, static_cast<std::uint32_t>(size_ - kLengthHeaderSize));
}

void MessageStream::fill(std::byte* out, std::size_t n) noexcept {
    while (n > 0) {
        std::uint64_t left = 0;
        Part part = part_at(pos_, left);
        std::size_t take = n < left ? n : static_cast<std::size_t>(left);
        if (part == Part::Payload) {
            payload_.fill(out, take);
        } else if (part == Part::Header) {
            std::byte header[kLengthHeaderSize];
            header_bytes(header);
            for (std::size_t i = 0; i < take; ++i) out[i] = header[pos_ + i];
        } else {
            out[0] = std::byte{'\n'};
        }
        out += take;
        n -= take;
        pos_ += take;
    }
}

std::size_t MessageStream::verify(const std::byte* got, std::size_t n) noexcept {
    std::size_t done = 0;
    while (done < n) {
        std::uint64_t left = 0;
        Part part = part_at(pos_, left);
        std::size_t take = n - done < left ? n - done : static_cast<std::size_t>(left);
        if (part == Part::Payload) {
            std::size_t ok = payload_.verify(got + done, take);
            pos_ += ok;
            if (ok != take) return done + ok;
        } else {
            std::byte expect[kLengthHeaderSize] = {std::byte{'\n'}};
            std::uint64_t first = 0;
            if (part == Part::Header) {
                header_bytes(expect);
                first = pos_;
            }
            for (std::size_t i = 0; i < take; ++i) {
                if (got[done + i] != expect[first + i]) return done + i;
                ++pos_;
            }
        }
        done += take;
    }
    return n;
}

void MessageStream::rewind_to(std::uint64_t to) noexcept {
    pos_ = to;
    // Payload bytes before `to` in this message: everything after the header, up to the delimiter.
    std::uint64_t header = shape_.mode == FramingMode::Length ? kLengthHeaderSize : 0;
    std::uint64_t payload_end = size_ - (shape_.mode == FramingMode::Line ? 1 : 0);
    std::uint64_t in_payload = to <= header ? 0 : (to < payload_end ? to : payload_end) - header;
    payload_.seek(payload_base_ + in_payload);
}

}  // namespace tcpecho
