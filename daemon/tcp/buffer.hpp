// A contiguous byte buffer with a read (head) and a write (tail) position, and the
// per-worker pool that lends buffers to connections only while they hold data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace tcpecho {

// Bytes [head, tail) are held; [tail, capacity) is free for the next recv().
// Not thread-safe: a buffer belongs to one connection on one worker.
class Buffer {
public:
    explicit Buffer(std::size_t capacity);

    [[nodiscard]] std::byte* data() noexcept { return storage_.get() + head_; }
    [[nodiscard]] const std::byte* data() const noexcept { return storage_.get() + head_; }
    [[nodiscard]] std::size_t size() const noexcept { return tail_ - head_; }
    [[nodiscard]] bool empty() const noexcept { return head_ == tail_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

    [[nodiscard]] std::byte* write_ptr() noexcept { return storage_.get() + tail_; }
    [[nodiscard]] std::size_t writable() const noexcept { return capacity_ - tail_; }

    // Offset of write_ptr() in the storage: the bytes before it have been written at some time.
    [[nodiscard]] std::size_t end_offset() const noexcept { return tail_; }
    // Bytes of storage charged to the MemoryBudget (from the start; see BufferPool).
    [[nodiscard]] std::size_t charged() const noexcept { return charged_; }
    void set_charged(std::size_t n) noexcept { charged_ = n; }

    // After recv() wrote n bytes at write_ptr().
    void commit(std::size_t n) noexcept { tail_ += n; }
    // After send() took n bytes from data(). An emptied buffer rewinds for free.
    void consume(std::size_t n) noexcept {
        head_ += n;
        if (head_ == tail_) head_ = tail_ = 0;
    }
    // Drops held bytes from the end (a trailing incomplete frame nobody will complete).
    void truncate(std::size_t keep) noexcept {
        tail_ = head_ + keep;
        if (head_ == tail_) head_ = tail_ = 0;
    }
    void clear() noexcept { head_ = tail_ = 0; }

    // Makes at least `min_writable` bytes free, by moving held bytes to the front and, if that
    // is not enough, growing (doubling) up to `max_capacity`. Returns false when it cannot
    // (beyond `max_capacity`, or out of memory); the held bytes are kept either way.
    bool reserve(std::size_t min_writable, std::size_t max_capacity);

private:
    std::unique_ptr<std::byte[]> storage_;
    std::size_t capacity_;
    std::size_t head_ = 0;
    std::size_t tail_ = 0;
    std::size_t charged_ = 0;
};

class MemoryBudget;

// Per-worker free list of standard-size buffers. Buffers grown past the standard size are
// freed on return instead of pooled, so a burst of huge frames does not pin memory.
// Pool buffer size: one recv() takes up to this much when a stream is flowing. Measured
// (docs/performance.md): with 256 KiB buffers a 1 GiB echo made ~4x the recv/send calls of
// the 1 MiB peers and cost 0.68 s CPU/GiB; with 1 MiB, 0.46-0.53 s, level with the blocking
// peer. Only connections holding data have a buffer, and a small message touches one page
// of it, so the size costs address space, not resident memory.
inline constexpr std::size_t kPoolBufferSize = 1024 * 1024;
// Free buffers kept per worker (at most 16 MiB); more are returned to the allocator.
inline constexpr std::size_t kPoolMaxFreeBuffers = 16;

// With a MemoryBudget, the pool also keeps its buffers' accounts: pages are charged when a
// read is about to write them for the first time (begin_read/finish_read) and given back when
// a buffer is freed; a pooled buffer stays charged (its pages stay resident).
class BufferPool {
public:
    BufferPool(std::size_t buffer_size, std::size_t max_free);
    ~BufferPool();
    BufferPool(const BufferPool&) = delete;
    BufferPool& operator=(const BufferPool&) = delete;

    // nullptr when out of memory.
    [[nodiscard]] Buffer* acquire() noexcept;
    void release(Buffer* buffer) noexcept;

    // Call before the first acquire(); nullptr (the default) counts nothing.
    void set_budget(MemoryBudget* budget) noexcept { budget_ = budget; }
    [[nodiscard]] MemoryBudget* budget() const noexcept { return budget_; }
    // A read into `b`: how many bytes recv() may write at `b.write_ptr()`, and the account to
    // settle after it.
    struct ReadGrant {
        std::size_t bytes;
        std::size_t charged_before;
    };
    // Before recv(): takes the pages of b.writable() not charged yet from the budget, as many
    // as it has room for, and shortens the read to the storage now charged (0 bytes: the budget
    // is exhausted, pause). Without a budget: all of b.writable().
    [[nodiscard]] ReadGrant begin_read(Buffer& b) noexcept;
    // After recv() (and Buffer::commit of what it read, if anything): gives back the pages
    // taken for it that it did not write. Charging by what was really written is what makes a
    // few bytes cost one page and not a whole buffer.
    void finish_read(Buffer& b, const ReadGrant& grant) noexcept;
    // Buffer::reserve, keeping the account right when the buffer moves to bigger storage.
    bool reserve(Buffer& b, std::size_t min_writable, std::size_t max_capacity);

    // Frees the pooled buffers and gives back what they were charged (at max_buffer_memory:
    // idle pool pages must not keep the budget from draining).
    void trim() noexcept;

    [[nodiscard]] std::size_t buffer_size() const noexcept { return buffer_size_; }
    [[nodiscard]] std::size_t free_count() const noexcept { return free_.size(); }
    [[nodiscard]] std::size_t lent_count() const noexcept { return lent_; }

private:
    std::size_t buffer_size_;
    std::size_t max_free_;
    std::size_t lent_ = 0;
    std::vector<Buffer*> free_;
    MemoryBudget* budget_ = nullptr;
    void destroy(Buffer* b) noexcept;
};

}  // namespace tcpecho
