#include "daemon/udp/udp_echo.hpp"

#include <arpa/inet.h>

#include <cerrno>  // EIO
#include <cstring>

#include "lib/clock.hpp"
#include "lib/fd.hpp"

namespace tcpecho {

namespace {

// Batches per wake-up before TCP connections and timers get a turn (then the ready list).
constexpr int kBatchesPerWakeup = 8;

std::string address_text(const sockaddr_storage& ss, socklen_t len) {
    return SocketAddress::from_sockaddr(ss, len).to_string();
}

}  // namespace

UdpEcho::UdpEcho(WorkerContext& context, std::shared_ptr<UdpListener> listener, int fd)
    : context_(&context),
      listener_(std::move(listener)),
      fd_(fd),
      max_datagram_(listener_->config().limits.udp_max_datagram),
      own_ports_(listener_->own_ports()),
      wildcard_(listener_->wildcard()),
      // Address space only: a datagram touches the pages it fills.
      data_(new std::byte[kBatch * max_datagram_]) {
    for (unsigned i = 0; i < kBatch; ++i) {
        in_iov_[i] = {data_.get() + i * max_datagram_, max_datagram_};
        msghdr& h = in_[i].msg_hdr;
        h.msg_name = &peer_[i];
        h.msg_iov = &in_iov_[i];
        h.msg_iovlen = 1;
        h.msg_control = in_control_[i].bytes;
    }
}

void UdpEcho::on_io(std::uint32_t /*events*/) noexcept {
    if (!ready_queued()) serve();  // already queued: the ready list will serve it
}

void UdpEcho::on_ready() noexcept { serve(); }

void UdpEcho::serve() noexcept {
    if (stopped_) return;
    for (int b = 0; b < kBatchesPerWakeup; ++b) {
        const int n = receive_batch();
        if (n <= 0) return;  // empty (the next datagram is a new edge) or an error (logged)
        const std::uint64_t now_ns = listener_->limiter() != nullptr ? monotonic_ns() : 0;
        out_count_ = 0;
        for (int i = 0; i < n; ++i) consider(static_cast<unsigned>(i), now_ns);
        send_replies();
        if (n < static_cast<int>(kBatch)) return;  // a short batch: the queue was empty
    }
    // Budget spent with datagrams possibly still queued; edge-triggered, so nothing would
    // report them again: come back after this iteration's other events.
    context_->loop().defer(this);
}

int UdpEcho::receive_batch() noexcept {
    for (unsigned i = 0; i < kBatch; ++i) {
        msghdr& h = in_[i].msg_hdr;
        h.msg_namelen = sizeof peer_[i];
        h.msg_controllen = kControlSize;
        h.msg_flags = 0;
    }
    const BatchResult r = recv_batch(fd_, in_.data(), kBatch);
    if (r.status == IoStatus::Ok) return static_cast<int>(r.messages);
    if (r.status == IoStatus::WouldBlock) return 0;
    context_->counters().udp_receive_errors.add();
    if (context_->may_log_peer_event()) {
        LOG_ERR("udp receive failed: %s listener=%s", errno_text(r.error).c_str(), listener_->config().name.c_str());
    }
    return -1;
}

void UdpEcho::note_kernel_drops(const msghdr& hdr) noexcept {
    for (cmsghdr* c = CMSG_FIRSTHDR(&hdr); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&hdr), c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL) continue;
        std::uint32_t total = 0;
        std::memcpy(&total, CMSG_DATA(c), sizeof total);
        // A running total per socket (it wraps): count what is new since the last datagram.
        context_->counters().udp_dropped_receive_queue.add(total - kernel_drops_seen_);
        kernel_drops_seen_ = total;
    }
}

void UdpEcho::drop_log(const char* why, unsigned i) noexcept {
    if (!log_enabled(LogLevel::Notice) || !drop_log_.allow(context_->loop().now_ms())) return;
    LOG_NOTICE("udp datagram dropped: %s %s", why,
               peer_tail(address_text(peer_[i], in_[i].msg_hdr.msg_namelen), listener_->config().name).c_str());
}

void UdpEcho::consider(unsigned i, std::uint64_t now_ns) noexcept {
    const msghdr& h = in_[i].msg_hdr;
    const std::size_t len = in_[i].msg_len;
    WorkerStats& stats = context_->counters();
    stats.udp_datagrams_received.add();
    stats.udp_bytes_received.add(len);
    note_kernel_drops(h);

    if ((h.msg_flags & MSG_TRUNC) != 0) {
        stats.udp_dropped_truncated.add();
        drop_log("larger than udp_max_datagram (truncated, not echoed)", i);
        return;
    }
    // Where it was sent to (wildcard sockets): the reply's source address, and the guard's.
    IpKey dest{};
    int ifindex = 0;
    bool broadcast = false;
    const bool dest_known = wildcard_ && destination_of(i, dest, ifindex, broadcast);
    const auto* source = reinterpret_cast<const sockaddr*>(&peer_[i]);
    switch (judge_source(source, dest_known ? &dest : nullptr, broadcast, own_ports_)) {
    case SourceVerdict::Answer:
        break;
    case SourceVerdict::Reflection:
        stats.udp_dropped_reflection.add();
        drop_log("source is port 0, an echo/chargen-style service port (7, 13, 19, 37) or not unicast "
                 "(reflection guard)",
                 i);
        return;
    case SourceVerdict::OwnPort:
        stats.udp_dropped_own_port.add();
        drop_log("source port is one tcpechod serves UDP on (echo loop guard)", i);
        return;
    case SourceVerdict::NotUnicastTo:
        stats.udp_dropped_not_unicast.add();
        drop_log("sent to a broadcast or multicast address", i);
        return;
    }
    if (SourceRateLimiter* limiter = listener_->limiter();
        limiter != nullptr && !limiter->allow(IpKey::from(source), now_ns)) {
        stats.udp_dropped_rate_limit.add();
        drop_log("over udp_rate_limit for this source address", i);
        return;
    }

    const unsigned j = out_count_++;
    out_iov_[j] = {in_iov_[i].iov_base, len};
    msghdr& o = out_[j].msg_hdr;
    o = msghdr{};
    o.msg_name = &peer_[i];
    o.msg_namelen = h.msg_namelen;
    o.msg_iov = &out_iov_[j];
    o.msg_iovlen = 1;
    if (dest_known) {
        // Reply from the address the client sent to (a multi-homed host would otherwise pick
        // a source by route, and the client would not recognise the answer).
        o.msg_control = out_control_[j].bytes;
        o.msg_controllen = kControlSize;
        cmsghdr* c = CMSG_FIRSTHDR(&o);
        if (dest.is_v4()) {
            in_pktinfo info{};
            std::memcpy(&info.ipi_spec_dst, dest.bytes + 12, 4);
            c->cmsg_level = IPPROTO_IP;
            c->cmsg_type = IP_PKTINFO;
            c->cmsg_len = CMSG_LEN(sizeof info);
            std::memcpy(CMSG_DATA(c), &info, sizeof info);
            o.msg_controllen = CMSG_SPACE(sizeof info);
        } else {
            in6_pktinfo info{};
            std::memcpy(&info.ipi6_addr, dest.bytes, 16);
            // The interface matters only for link-local addresses; elsewhere let routing choose.
            if (IN6_IS_ADDR_LINKLOCAL(&info.ipi6_addr)) info.ipi6_ifindex = static_cast<unsigned>(ifindex);
            c->cmsg_level = IPPROTO_IPV6;
            c->cmsg_type = IPV6_PKTINFO;
            c->cmsg_len = CMSG_LEN(sizeof info);
            std::memcpy(CMSG_DATA(c), &info, sizeof info);
            o.msg_controllen = CMSG_SPACE(sizeof info);
        }
    }
}

bool UdpEcho::destination_of(unsigned i, IpKey& address, int& ifindex, bool& broadcast) const noexcept {
    const msghdr& h = in_[i].msg_hdr;
    bool found = false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            in_pktinfo info{};
            std::memcpy(&info, CMSG_DATA(c), sizeof info);
            address = IpKey::from(info.ipi_addr);
            ifindex = info.ipi_ifindex;
            // For a unicast datagram the local address that answers is its destination; a
            // (directed) broadcast is answered from some other local address.
            broadcast = info.ipi_addr.s_addr != info.ipi_spec_dst.s_addr;
            found = true;
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            in6_pktinfo info{};
            std::memcpy(&info, CMSG_DATA(c), sizeof info);
            address = IpKey::from(info.ipi6_addr);
            ifindex = static_cast<int>(info.ipi6_ifindex);
            broadcast = false;  // IPv6 has no broadcast; multicast is judged by address
            found = true;
        }
    }
    return found;
}

void UdpEcho::send_replies() noexcept {
    WorkerStats& stats = context_->counters();
    unsigned done = 0;
    while (done < out_count_) {
        const BatchResult r = send_batch(fd_, out_.data() + done, out_count_ - done);
        if (r.status == IoStatus::Ok && r.messages > 0) {
            for (unsigned k = done; k < done + r.messages; ++k) {
                stats.udp_datagrams_echoed.add();
                stats.udp_bytes_echoed.add(out_iov_[k].iov_len);
            }
            done += r.messages;
            continue;
        }
        if (r.status == IoStatus::WouldBlock) {
            // The send buffer is full: drop the rest of this batch rather than block or queue.
            stats.udp_dropped_send_full.add(out_count_ - done);
            if (log_enabled(LogLevel::Info) && drop_log_.allow(context_->loop().now_ms())) {
                LOG_INFO("udp send buffer full: dropped %u replies listener=%s", out_count_ - done,
                         listener_->config().name.c_str());
            }
            return;
        }
        // This reply cannot be sent (unreachable, refused by a firewall...): skip it only.
        const int err = r.status == IoStatus::Ok ? EIO : r.error;
        stats.udp_send_errors.add();
        if (log_enabled(LogLevel::Notice) && drop_log_.allow(context_->loop().now_ms())) {
            const auto& peer = *static_cast<const sockaddr_storage*>(out_[done].msg_hdr.msg_name);
            LOG_NOTICE("udp reply failed: %s %s", errno_text(err).c_str(),
                       peer_tail(address_text(peer, out_[done].msg_hdr.msg_namelen), listener_->config().name).c_str());
        }
        ++done;
    }
}

}  // namespace tcpecho
