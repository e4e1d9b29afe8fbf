#include "tools/udp_datagram.hpp"

#include <algorithm>
#include <cstring>

#include "tools/payload.hpp"

namespace tcpecho::probe::udp {

namespace {

void put32(std::byte* out, std::uint32_t v) noexcept {
    for (int i = 3; i >= 0; --i) {
        out[i] = static_cast<std::byte>(v & 0xff);
        v >>= 8;
    }
}
void put64(std::byte* out, std::uint64_t v) noexcept {
    for (int i = 7; i >= 0; --i) {
        out[i] = static_cast<std::byte>(v & 0xff);
        v >>= 8;
    }
}
std::uint64_t get(const std::byte* in, int n) noexcept {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | std::to_integer<std::uint64_t>(in[i]);
    return v;
}

Defect region_of(std::size_t offset) noexcept {
    if (offset < kFlowOffset) return Defect::Magic;
    if (offset < kSeqOffset) return Defect::Flow;
    if (offset < kSendTimeOffset) return Defect::Seq;
    return Defect::SendTime;
}

}  // namespace

void encode_header(const Header& header, std::byte* out) noexcept {
    put32(out, header.magic);
    put32(out + kFlowOffset, header.flow);
    put64(out + kSeqOffset, header.seq);
    put64(out + kSendTimeOffset, header.send_ns);
}

Header decode_header(const std::byte* in) noexcept {
    Header h;
    h.magic = static_cast<std::uint32_t>(get(in, 4));
    h.flow = static_cast<std::uint32_t>(get(in + kFlowOffset, 4));
    h.seq = get(in + kSeqOffset, 8);
    h.send_ns = get(in + kSendTimeOffset, 8);
    return h;
}

std::uint64_t datagram_seed(std::uint64_t flow_seed, std::uint64_t seq) noexcept {
    return splitmix64(flow_seed + (seq + 1) * kSplitMixGamma);
}

std::size_t datagram_size(std::uint64_t size_min, std::uint64_t size_max, std::uint64_t flow_seed,
                          std::uint64_t seq) noexcept {
    if (size_min >= size_max) return static_cast<std::size_t>(size_min);
    // Another splitmix64 output of the datagram's seed: independent of its payload words.
    const std::uint64_t draw = splitmix64(datagram_seed(flow_seed, seq) ^ kSplitMixGamma);
    return static_cast<std::size_t>(size_min + draw % (size_max - size_min + 1));
}

void fill_datagram(std::byte* out, std::size_t size, const DatagramId& id, std::uint64_t send_ns) noexcept {
    PayloadStream payload(datagram_seed(id.flow_seed, id.seq));
    if (size < kHeaderSize) {
        payload.fill(out, size);
        return;
    }
    encode_header(Header{kMagic, id.flow, id.seq, send_ns}, out);
    payload.fill(out + kHeaderSize, size - kHeaderSize);
}

std::string_view to_string(Defect defect) noexcept {
    switch (defect) {
    case Defect::None:
        return "none";
    case Defect::Length:
        return "length";
    case Defect::Magic:
        return "magic";
    case Defect::Flow:
        return "flow id";
    case Defect::Seq:
        return "sequence number";
    case Defect::SendTime:
        return "send time";
    case Defect::Payload:
        return "payload";
    }
    return "?";
}

Check check_datagram(std::span<const std::byte> got, std::size_t size, const DatagramId& id,
                     std::optional<std::uint64_t> send_ns) noexcept {
    const std::size_t common = std::min(got.size(), size);
    std::size_t payload_start = 0;
    if (size >= kHeaderSize) {
        std::byte header[kHeaderSize];
        std::uint64_t time = 0;
        if (send_ns) {
            time = *send_ns;
        } else if (got.size() >= kHeaderSize) {
            time = decode_header(got.data()).send_ns;  // not known any more: not compared
        }
        encode_header(Header{kMagic, id.flow, id.seq, time}, header);
        const std::size_t n = std::min(common, kHeaderSize);
        for (std::size_t i = 0; i < n; ++i) {
            if (got[i] == header[i]) continue;
            // Without a known send time, a short echo cut inside the field cannot be judged there.
            if (!send_ns && i >= kSendTimeOffset) break;
            return {region_of(i), i};
        }
        payload_start = kHeaderSize;
    }
    if (common > payload_start) {
        PayloadStream payload(datagram_seed(id.flow_seed, id.seq));
        const std::size_t n = common - payload_start;
        const std::size_t ok = payload.verify(got.data() + payload_start, n);
        if (ok != n) return {Defect::Payload, payload_start + ok};
    }
    if (got.size() != size) return {Defect::Length, common};
    return {};
}

}  // namespace tcpecho::probe::udp
