// The bytes of one probe UDP datagram, and how an echo of it is checked. Pure: no sockets,
// no clock, so every byte of the layout can be tested on its own.
//
// A datagram of at least kHeaderSize bytes starts with a header in network byte order:
//
//   offset  0  4 bytes  magic      kMagic: tells a probe datagram from anything else
//           4  4 bytes  flow id    which of the probe's flows (sockets) sent it
//           8  8 bytes  sequence   0, 1, 2 ... per flow
//          16  8 bytes  send time  CLOCK_MONOTONIC in ns, when it was handed to send()
//          24  ...      payload    PayloadStream(datagram_seed(flow seed, seq)) from its offset 0
//
// A shorter datagram has no room for a header: all of it is the first `size` bytes of that
// payload stream (a 0-byte datagram is only its length). The flow then keeps it alone in
// flight and matches its echo by position, not by header (see UdpFlow).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace tcpecho::probe::udp {

inline constexpr std::size_t kHeaderSize = 24;
inline constexpr std::uint32_t kMagic = 0x54435544;  // "TCUD"
// What the command line accepts: the UDP length field's limit. The kernel refuses more than
// 65507 bytes over IPv4 (65535 - 20-byte IP header - 8-byte UDP header) and 65527 over IPv6
// (its payload length field does not count its own 40-byte header) with EMSGSIZE.
inline constexpr std::size_t kMaxDatagram = 65535;
inline constexpr std::size_t kMaxIpv4Payload = 65507;
inline constexpr std::size_t kMaxIpv6Payload = 65527;

// Field offsets, for reports.
inline constexpr std::size_t kFlowOffset = 4;
inline constexpr std::size_t kSeqOffset = 8;
inline constexpr std::size_t kSendTimeOffset = 16;

struct Header {
    std::uint32_t magic = kMagic;
    std::uint32_t flow = 0;
    std::uint64_t seq = 0;
    std::uint64_t send_ns = 0;
};

void encode_header(const Header& header, std::byte* out) noexcept;  // kHeaderSize bytes
Header decode_header(const std::byte* in) noexcept;                 // kHeaderSize bytes

// Everything a datagram's bytes derive from, but its send time.
struct DatagramId {
    std::uint32_t flow = 0;
    std::uint64_t flow_seed = 0;  // connection_seed(--seed, flow): the same derivation as TCP
    std::uint64_t seq = 0;
};

// Distinct, independent payload streams per datagram: any one can be regenerated from its
// sequence number alone, so the verifier stores nothing but send times.
std::uint64_t datagram_seed(std::uint64_t flow_seed, std::uint64_t seq) noexcept;

// The size of datagram `seq` when sizes are drawn from [size_min, size_max]: a function of
// the datagram, so an echo's expected length is known without storing it.
std::size_t datagram_size(std::uint64_t size_min, std::uint64_t size_max, std::uint64_t flow_seed,
                          std::uint64_t seq) noexcept;

// Writes all `size` bytes of datagram `id`, its header saying `send_ns`.
void fill_datagram(std::byte* out, std::size_t size, const DatagramId& id, std::uint64_t send_ns) noexcept;

enum class Defect : std::uint8_t {
    None,
    Length,    // every byte present matches, but the echo is shorter or longer
    Magic,     // the first differing byte is in the magic
    Flow,      // ... in the flow id
    Seq,       // ... in the sequence number
    SendTime,  // ... in the send time
    Payload,   // ... in the payload
};
std::string_view to_string(Defect defect) noexcept;

struct Check {
    Defect defect = Defect::None;
    std::size_t offset = 0;  // of the first differing byte; for Length, the shorter length
};

// Compares an echo with datagram `id` of `size` bytes sent at `send_ns`. With send_ns
// unknown (nullopt: the verifier no longer keeps it) the send-time field is not compared.
// The first differing byte names the defect, so a report can show it with its neighbours.
Check check_datagram(std::span<const std::byte> got, std::size_t size, const DatagramId& id,
                     std::optional<std::uint64_t> send_ns) noexcept;

}  // namespace tcpecho::probe::udp
