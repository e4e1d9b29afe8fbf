// One worker's share of a UDP listener: its own SO_REUSEPORT socket, edge-triggered, read with
// recvmmsg and answered with sendmmsg in batches, straight from the receive buffers.
//
// Every datagram is echoed whole or not at all: truncated reads (larger than
// udp_max_datagram), reflection risks, echoes to ourselves and replies over a source's
// budget are dropped and counted, and so is every reply the kernel will not take right now
// (a full send buffer drops, it never blocks the loop).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "loop.hpp"
#include "udp_listener.hpp"

namespace tcpecho {

class Worker;

class UdpEchoSlot final : public IoHandler {
public:
    // Datagrams per recvmmsg/sendmmsg call.
    static constexpr unsigned kBatch = 32;

    UdpEchoSlot(Worker& worker, std::shared_ptr<UdpListener> listener, int fd);
    ~UdpEchoSlot() override = default;
    UdpEchoSlot(const UdpEchoSlot&) = delete;
    UdpEchoSlot& operator=(const UdpEchoSlot&) = delete;

    void on_io(std::uint32_t events) noexcept override;
    void on_ready() noexcept override;

    [[nodiscard]] int fd() const noexcept { return fd_; }
    [[nodiscard]] const UdpListener& listener() const noexcept { return *listener_; }

private:
    static constexpr std::size_t kControlSize = 128;  // SO_RXQ_OVFL + IP(V6)_PKTINFO

    // Reads and answers batches until the socket is empty or the wake-up's budget is spent.
    void serve() noexcept;
    // One recvmmsg: the number of datagrams, 0 when there are none, -1 on an error.
    int receive_batch() noexcept;
    // Decides for datagram `i` of the batch; on Answer, appends its reply to the send batch.
    void consider(unsigned i, std::uint64_t now_ns) noexcept;
    void send_replies() noexcept;
    void note_kernel_drops(const msghdr& hdr) noexcept;
    void drop_log(const char* why, unsigned i) noexcept;

    Worker* worker_;
    std::shared_ptr<UdpListener> listener_;
    int fd_;
    std::size_t max_datagram_;
    IpKey local_ip_;  // for non-wildcard sockets; wildcard ones learn it per datagram
    std::uint16_t local_port_;
    bool wildcard_;
    std::uint32_t kernel_drops_seen_ = 0;  // SO_RXQ_OVFL is a running total per socket

    std::unique_ptr<std::byte[]> data_;  // kBatch buffers of max_datagram_ bytes
    std::array<mmsghdr, kBatch> in_{};
    std::array<iovec, kBatch> in_iov_{};
    std::array<sockaddr_storage, kBatch> peer_{};
    struct alignas(cmsghdr) Control {
        unsigned char bytes[kControlSize];
    };
    std::array<Control, kBatch> in_control_{};
    // The destination each request was sent to (wildcard sockets), for the reply's source.
    std::array<IpKey, kBatch> dest_{};
    std::array<int, kBatch> dest_ifindex_{};

    std::array<mmsghdr, kBatch> out_{};
    std::array<iovec, kBatch> out_iov_{};
    std::array<Control, kBatch> out_control_{};
    unsigned out_count_ = 0;
};

}  // namespace tcpecho
