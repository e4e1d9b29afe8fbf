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
#include <vector>

#include "daemon/base/log.hpp"
#include "daemon/base/loop.hpp"
#include "daemon/base/worker_context.hpp"
#include "daemon/udp/udp_listener.hpp"

namespace tcpecho {


class UdpEcho final : public IoHandler {
public:
    // Datagrams per recvmmsg/sendmmsg call.
    static constexpr unsigned kBatch = 32;

    UdpEcho(WorkerContext& context, std::shared_ptr<UdpListener> listener, int fd);
    ~UdpEcho() override = default;
    UdpEcho(const UdpEcho&) = delete;
    UdpEcho& operator=(const UdpEcho&) = delete;

    void on_io(std::uint32_t events) noexcept override;
    void on_ready() noexcept override;

    [[nodiscard]] int fd() const noexcept { return fd_; }
    // Drain: stop answering for good (also when already queued on the ready list).
    void stop() noexcept { stopped_ = true; }
    [[nodiscard]] UdpListener& listener() const noexcept { return *listener_; }

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
    // Where datagram `i` was sent to (wildcard sockets): false when the kernel did not say.
    bool destination_of(unsigned i, IpKey& address, int& ifindex, bool& broadcast) const noexcept;

    WorkerContext* context_;
    std::shared_ptr<UdpListener> listener_;
    int fd_;
    std::size_t max_datagram_;
    std::vector<std::uint16_t> own_ports_;  // see judge_source
    bool wildcard_;
    bool stopped_ = false;
    // Drop lines have their own budget (a flood of them must not hide the worker's TCP lines).
    LogRateLimit drop_log_{10};
    std::uint32_t kernel_drops_seen_ = 0;  // SO_RXQ_OVFL is a running total per socket

    std::unique_ptr<std::byte[]> data_;  // kBatch buffers of max_datagram_ bytes
    std::array<mmsghdr, kBatch> in_{};
    std::array<iovec, kBatch> in_iov_{};
    std::array<sockaddr_storage, kBatch> peer_{};
    struct alignas(cmsghdr) Control {
        unsigned char bytes[kControlSize];
    };
    std::array<Control, kBatch> in_control_{};
    std::array<mmsghdr, kBatch> out_{};
    std::array<iovec, kBatch> out_iov_{};
    std::array<Control, kBatch> out_control_{};
    unsigned out_count_ = 0;
};

}  // namespace tcpecho
