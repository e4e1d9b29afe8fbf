// Catch2 v2 only: the library's main(). (Catch2 v3 links its own from catch2-with-main.)
//
// GCC 12 with -fsanitize=address reports a false -Wmaybe-uninitialized inside libstdc++'s
// std::function as used by Catch's std::regex; this file holds nothing but Catch itself.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define CATCH_CONFIG_MAIN
#include "test_catch.hpp"
