// Buffer and BufferPool unit tests.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/tcp/buffer.hpp"
#include "daemon/tcp/memory_budget.hpp"
#include "test_catch.hpp"

using tcpecho::Buffer;
using tcpecho::BufferPool;

namespace {

// What recv() would do: copy into write_ptr(), then commit.
void put(Buffer& b, std::string_view s) {
    REQUIRE(b.writable() >= s.size());
    std::memcpy(b.write_ptr(), s.data(), s.size());
    b.commit(s.size());
}

std::string held(const Buffer& b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// Offset of the held bytes from the start of the storage, from the public interface only:
// capacity - writable is the tail, and tail - size the head.
std::size_t head_of(const Buffer& b) { return b.capacity() - b.writable() - b.size(); }

}  // namespace

TEST_CASE("a new buffer is empty with all its capacity writable", "[buffer]") {
    Buffer b(16);
    CHECK(b.empty());
    CHECK(b.size() == 0);
    CHECK(b.capacity() == 16);
    CHECK(b.writable() == 16);
    CHECK(b.data() == b.write_ptr());
}

TEST_CASE("commit, consume and the free rewind", "[buffer]") {
    Buffer b(16);
    put(b, "hello");
    CHECK(held(b) == "hello");
    CHECK(b.size() == 5);
    CHECK_FALSE(b.empty());
    CHECK(b.writable() == 11);

    put(b, " world");
    CHECK(held(b) == "hello world");
    CHECK(b.writable() == 5);

    b.consume(6);
    CHECK(held(b) == "world");
    CHECK(head_of(b) == 6);
    CHECK(b.writable() == 5);  // consuming does not move bytes

    b.consume(5);  // emptied: rewinds to the front for free
    CHECK(b.empty());
    CHECK(head_of(b) == 0);
    CHECK(b.writable() == 16);
    CHECK(b.data() == b.write_ptr());

    put(b, "again");
    CHECK(held(b) == "again");
    CHECK(head_of(b) == 0);
}

TEST_CASE("consume of nothing changes nothing", "[buffer]") {
    Buffer b(8);
    put(b, "abc");
    b.consume(0);
    CHECK(held(b) == "abc");
    CHECK(b.writable() == 5);
}

TEST_CASE("truncate drops bytes from the end", "[buffer]") {
    Buffer b(16);
    put(b, "abcdef");
    b.consume(2);
    REQUIRE(held(b) == "cdef");

    b.truncate(2);
    CHECK(held(b) == "cd");
    CHECK(head_of(b) == 2);
    CHECK(b.writable() == 12);

    b.truncate(2);  // keeping everything is a no-op
    CHECK(held(b) == "cd");

    b.truncate(0);  // emptied: rewinds like consume
    CHECK(b.empty());
    CHECK(head_of(b) == 0);
    CHECK(b.writable() == 16);
}

TEST_CASE("clear empties and rewinds", "[buffer]") {
    Buffer b(8);
    put(b, "abcdef");
    b.consume(3);
    b.clear();
    CHECK(b.empty());
    CHECK(b.writable() == 8);
    CHECK(head_of(b) == 0);
}

TEST_CASE("reserve", "[buffer]") {
    SECTION("enough room already: nothing moves") {
        Buffer b(16);
        put(b, "abcdefgh");
        b.consume(4);
        const std::byte* before = b.data();
        REQUIRE(b.reserve(8, 16));
        CHECK(b.data() == before);
        CHECK(held(b) == "efgh");
        CHECK(b.capacity() == 16);
    }
    SECTION("compaction moves the held bytes to the front and keeps them") {
        Buffer b(16);
        put(b, "0123456789ab");
        b.consume(8);
        REQUIRE(held(b) == "89ab");
        REQUIRE(b.writable() == 4);
        REQUIRE(b.reserve(10, 16));
        CHECK(b.capacity() == 16);  // compaction was enough: no growth
        CHECK(head_of(b) == 0);
        CHECK(held(b) == "89ab");
        CHECK(b.writable() == 12);
        put(b, "cdefghijkl");
        CHECK(held(b) == "89abcdefghijkl");
    }
    SECTION("growth doubles and keeps the content") {
        Buffer b(16);
        put(b, "0123456789abcdef");
        REQUIRE(b.reserve(1, 1024));
        CHECK(b.capacity() == 32);
        CHECK(held(b) == "0123456789abcdef");
        CHECK(b.writable() == 16);
        put(b, std::string(16, 'x'));
        REQUIRE(b.reserve(1, 1024));
        CHECK(b.capacity() == 64);
        CHECK(held(b) == "0123456789abcdef" + std::string(16, 'x'));
    }
    SECTION("growth goes straight to what is needed when doubling is not enough") {
        Buffer b(16);
        put(b, "0123456789abcdef");
        REQUIRE(b.reserve(100, 1024));
        CHECK(b.capacity() == 116);
        CHECK(b.writable() >= 100);
        CHECK(held(b) == "0123456789abcdef");
    }
    SECTION("growth stops at max_capacity") {
        Buffer b(16);
        put(b, "0123456789abcdef");
        REQUIRE(b.reserve(2, 20));
        CHECK(b.capacity() == 20);
        CHECK(b.writable() == 4);
        CHECK(held(b) == "0123456789abcdef");
    }
    SECTION("compaction and growth together keep the content") {
        Buffer b(16);
        put(b, "0123456789abcdef");
        b.consume(4);
        REQUIRE(b.reserve(10, 64));  // 12 held + 10 > 16: compact, then grow
        CHECK(b.capacity() == 32);
        CHECK(head_of(b) == 0);
        CHECK(held(b) == "456789abcdef");
        CHECK(b.writable() == 20);
    }
    SECTION("beyond max_capacity it fails and keeps the content") {
        Buffer b(16);
        put(b, "0123456789abcdef");
        CHECK_FALSE(b.reserve(5, 20));
        CHECK(b.capacity() == 16);
        CHECK(held(b) == "0123456789abcdef");

        b.consume(4);
        CHECK_FALSE(b.reserve(9, 20));  // 12 held + 9 > 20 even after compaction
        CHECK(held(b) == "456789abcdef");
        CHECK(b.capacity() == 16);
        CHECK(b.reserve(8, 20));  // exactly max_capacity is fine
        CHECK(b.capacity() == 20);
        CHECK(held(b) == "456789abcdef");
    }
}

TEST_CASE("BufferPool lends and reuses standard buffers", "[buffer][pool]") {
    BufferPool pool(64, 2);
    CHECK(pool.buffer_size() == 64);
    CHECK(pool.lent_count() == 0);
    CHECK(pool.free_count() == 0);

    Buffer* a = pool.acquire();
    REQUIRE(a != nullptr);
    CHECK(a->capacity() == 64);
    CHECK(a->empty());
    CHECK(pool.lent_count() == 1);

    put(*a, "leftover");
    a->consume(3);
    pool.release(a);
    CHECK(pool.lent_count() == 0);
    CHECK(pool.free_count() == 1);

    Buffer* b = pool.acquire();
    CHECK(b == a);  // reused, not reallocated
    CHECK(b->empty());
    CHECK(b->writable() == 64);  // and handed out rewound
    CHECK(pool.free_count() == 0);
    CHECK(pool.lent_count() == 1);
    pool.release(b);
}

TEST_CASE("BufferPool frees grown buffers instead of pooling them", "[buffer][pool]") {
    BufferPool pool(64, 4);
    Buffer* a = pool.acquire();
    put(*a, std::string(64, 'x'));
    REQUIRE(a->reserve(64, 1024));
    REQUIRE(a->capacity() == 128);
    pool.release(a);
    CHECK(pool.lent_count() == 0);
    CHECK(pool.free_count() == 0);

    Buffer* b = pool.acquire();
    CHECK(b->capacity() == 64);
    pool.release(b);
    CHECK(pool.free_count() == 1);
}

TEST_CASE("BufferPool keeps at most max_free idle buffers", "[buffer][pool]") {
    BufferPool pool(32, 2);
    std::vector<Buffer*> lent;
    for (int i = 0; i < 5; ++i) lent.push_back(pool.acquire());
    CHECK(pool.lent_count() == 5);
    for (std::size_t i = 0; i < lent.size(); ++i) {
        pool.release(lent[i]);
        CHECK(pool.lent_count() == 4 - i);
        CHECK(pool.free_count() == std::min<std::size_t>(i + 1, 2));
    }
    // Drawing again takes the pooled ones first, then allocates.
    Buffer* x = pool.acquire();
    Buffer* y = pool.acquire();
    Buffer* z = pool.acquire();
    CHECK(pool.free_count() == 0);
    CHECK(pool.lent_count() == 3);
    pool.release(x);
    pool.release(y);
    pool.release(z);
    CHECK(pool.free_count() == 2);
    CHECK(pool.lent_count() == 0);
}

TEST_CASE("BufferPool ignores release(nullptr)", "[buffer][pool]") {
    BufferPool pool(32, 2);
    Buffer* a = pool.acquire();
    pool.release(nullptr);
    CHECK(pool.lent_count() == 1);
    CHECK(pool.free_count() == 0);
    pool.release(a);
    CHECK(pool.lent_count() == 0);
}

TEST_CASE("BufferPool with max_free 0 pools nothing", "[buffer][pool]") {
    BufferPool pool(32, 0);
    Buffer* a = pool.acquire();
    pool.release(a);
    CHECK(pool.free_count() == 0);
    CHECK(pool.lent_count() == 0);
}

TEST_CASE("MemoryBudget: exhausted at the limit, resumable at 7/8, tight above 3/4", "[buffer][budget]") {
    tcpecho::MemoryBudget budget(80000);
    budget.take(60000);
    CHECK_FALSE(budget.tight());  // 3/4 exactly
    budget.take(1000);
    CHECK_FALSE(budget.exhausted());
    CHECK(budget.tight());
    CHECK(budget.take_up_to(5000) == 5000);    // fits: all of it
    CHECK(budget.take_up_to(20000) == 12288);  // 14000 left: the whole pages of it
    CHECK(budget.used() == 78288);
    CHECK(budget.exhausted());  // 1712 bytes left, less than a page
    CHECK(budget.take_up_to(4096) == 0);
    budget.take(5000);  // memory already in use is charged past the limit
    CHECK(budget.used() == 83288);
    CHECK(budget.take_up_to(1) == 0);
    CHECK_FALSE(budget.try_resume());
    budget.give_back(13288);
    CHECK(budget.try_resume());  // 70000 <= 7/8 of 80000
    budget.set_limit(200000);    // a reload raises it
    CHECK_FALSE(budget.tight());
    CHECK_FALSE(budget.exhausted());
}

TEST_CASE("MemoryBudget: at the limit it stays paused for everyone until 7/8, whatever pages come back",
          "[buffer][budget]") {
    // Two workers share the budget. A read on the first finds no page: the budget pauses.
    // Reads give back the pages they did not write, so right after, a page or two are free
    // again; the other worker must still see the budget exhausted (not accept and serve a new
    // connection while the first one's connections wait) until use is down to 7/8.
    tcpecho::MemoryBudget budget(80 * 4096);
    CHECK(budget.take_up_to(80 * 4096) == 80 * 4096);
    CHECK(budget.take_up_to(4096) == 0);  // worker 1: no room, paused
    CHECK(budget.paused());
    budget.give_back(3 * 4096);             // a read gave back what it did not write
    CHECK(budget.exhausted());              // worker 2 still sees the pause
    CHECK(budget.take_up_to(4096) == 0);    // and gets no page
    CHECK_FALSE(budget.try_resume());       // 77 of 80 pages: above 7/8
    budget.give_back(7 * 4096);             // 70 pages = 7/8
    CHECK(budget.paused());                 // until someone looks
    CHECK(budget.try_resume());             // a worker's retry timer
    CHECK_FALSE(budget.paused());
    CHECK_FALSE(budget.exhausted());
    CHECK(budget.try_resume());                    // not paused: nothing to resume
    CHECK(budget.take_up_to(4096) == 4096);        // and reads get pages again

    // A pause set by a read that then went on in pages it already had: no worker polls for
    // its end, so the next accept or read ends it, once use is down to 7/8.
    tcpecho::MemoryBudget b3(80 * 4096);
    CHECK(b3.take_up_to(80 * 4096) == 80 * 4096);
    CHECK(b3.take_up_to(4096) == 0);
    CHECK(b3.paused());
    b3.give_back(40 * 4096);
    CHECK_FALSE(b3.exhausted());             // ends the pause
    CHECK_FALSE(b3.paused());
    CHECK(b3.take_up_to(1) == 1);

    // An accept that finds less than a page left pauses it too.
    tcpecho::MemoryBudget b2(10 * 4096);
    b2.take(10 * 4096 - 100);
    CHECK(b2.exhausted());
    b2.give_back(4096);
    CHECK(b2.exhausted());
    CHECK(b2.paused());
}

namespace {

// What Connection::read_input does around recv(): a "recv" of up to `n` bytes of 'x'.
std::size_t read_into(BufferPool& pool, Buffer& b, std::size_t n) {
    const BufferPool::ReadGrant grant = pool.begin_read(b);
    const std::size_t got = std::min(n, grant.bytes);
    if (got > 0) put(b, std::string(got, 'x'));
    pool.finish_read(b, grant);
    return got;
}

}  // namespace

TEST_CASE("BufferPool charges the pages recv() wrote, and never passes the budget", "[buffer][budget]") {
    tcpecho::MemoryBudget budget(64 * 1024);
    {
        BufferPool pool(1024 * 1024, 4);
        pool.set_budget(&budget);
        Buffer* a = pool.acquire();
        REQUIRE(a != nullptr);
        CHECK(budget.used() == 0);  // lent but untouched: nothing resident
        CHECK(read_into(pool, *a, 5000) == 5000);
        CHECK(budget.used() == 8192);  // two pages, not the whole buffer
        CHECK(a->charged() == 8192);
        CHECK(read_into(pool, *a, 100) == 100);
        CHECK(budget.used() == 8192);  // still within the charged pages
        CHECK(read_into(pool, *a, 0) == 0);  // a read that found nothing (EAGAIN)
        CHECK(budget.used() == 8192);        // gives back all it was granted
        // A read that would pass the budget is shortened to it.
        CHECK(read_into(pool, *a, 70000) == 64 * 1024 - 5100);
        CHECK(budget.used() == 64 * 1024);
        CHECK(budget.exhausted());
        CHECK(pool.begin_read(*a).bytes == 0);  // pause
        Buffer* b = pool.acquire();
        CHECK(read_into(pool, *b, 1) == 0);  // pause
        a->consume(a->size());
        pool.release(b);
        pool.release(a);  // at the budget ("tight"): freed, not pooled, and its pages given back
        CHECK(pool.free_count() == 0);
        CHECK(budget.used() == 0);
        CHECK(budget.try_resume());  // what a worker's retry timer does: the pause ends

        Buffer* c = pool.acquire();
        CHECK(read_into(pool, *c, 100) == 100);
        c->clear();
        pool.release(c);  // not tight: pooled, and still charged (its page stays resident)
        CHECK(pool.free_count() == 1);
        CHECK(budget.used() == 4096);
        // Reused: its charged page is written again without taking more.
        Buffer* d = pool.acquire();
        REQUIRE(d == c);
        CHECK(read_into(pool, *d, 10) == 10);
        CHECK(budget.used() == 4096);
        pool.release(d);
    }
    CHECK(budget.used() == 0);  // the pool's destructor gave back what its free buffers held
}

TEST_CASE("BufferPool::trim frees the pooled buffers and gives back their charge", "[buffer][budget]") {
    tcpecho::MemoryBudget budget(64 * 1024 * 1024);
    BufferPool pool(1024 * 1024, 4);
    pool.set_budget(&budget);
    Buffer* a = pool.acquire();
    Buffer* b = pool.acquire();
    REQUIRE(read_into(pool, *a, 10000) == 10000);
    REQUIRE(read_into(pool, *b, 100) == 100);
    a->consume(a->size());
    b->consume(b->size());
    pool.release(a);
    pool.release(b);
    CHECK(pool.free_count() == 2);
    CHECK(budget.used() == 3 * 4096 + 4096);  // pooled buffers keep their pages charged
    pool.trim();
    CHECK(pool.free_count() == 0);
    CHECK(budget.used() == 0);
}

TEST_CASE("BufferPool: reads in flight at once share the budget instead of each passing it", "[buffer][budget]") {
    // Two workers' reads between begin_read and finish_read at the same time.
    tcpecho::MemoryBudget budget(100 * 1024);
    BufferPool one(1024 * 1024, 0), other(1024 * 1024, 0);
    one.set_budget(&budget);
    other.set_budget(&budget);
    Buffer* a = one.acquire();
    Buffer* b = other.acquire();
    const BufferPool::ReadGrant ga = one.begin_read(*a);
    const BufferPool::ReadGrant gb = other.begin_read(*b);
    CHECK(ga.bytes == 100 * 1024);  // the first takes all the room
    CHECK(gb.bytes == 0);
    CHECK(budget.used() == 100 * 1024);
    put(*a, std::string(ga.bytes, 'x'));
    one.finish_read(*a, ga);
    other.finish_read(*b, gb);
    CHECK(budget.used() == 100 * 1024);
    a->clear();
    one.release(a);
    other.release(b);
    CHECK(budget.used() == 0);
}

TEST_CASE("BufferPool::reserve re-charges a buffer that moved to bigger storage", "[buffer][budget]") {
    tcpecho::MemoryBudget budget(1024 * 1024);
    BufferPool pool(16 * 1024, 4);
    pool.set_budget(&budget);
    Buffer* a = pool.acquire();
    CHECK(read_into(pool, *a, 16 * 1024) == 16 * 1024);
    CHECK(budget.used() == 16 * 1024);
    a->consume(6000);
    REQUIRE(pool.reserve(*a, 16 * 1024, 1024 * 1024));  // 10384 held + 16 KiB > 16 KiB: grows
    CHECK(a->capacity() > 16 * 1024);
    CHECK(budget.used() == 12288);  // the copied 10384 bytes, in pages; the old storage is gone
    CHECK(a->charged() == 12288);
    a->clear();
    pool.release(a);  // grown: freed
    CHECK(budget.used() == 0);
}
