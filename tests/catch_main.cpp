// Catch2 v2 only: the library's main(). (Catch2 v3 links its own from catch2-with-main.)
// Compiled once, as the catch2-main library of tests/meson.build.
#ifndef TCPECHO_CATCH2_V3
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#endif
