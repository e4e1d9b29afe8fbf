// Includes Catch2 the way the installed version wants it: tests/meson.build defines
// TCPECHO_CATCH2_V3 when it found Catch2 v3 (pkg-config catch2-with-main); otherwise this is
// Catch2 v2 (Debian 12 ships 2.13.10). Only the core macros are used, so the tests compile
// unchanged against both.
#pragma once
#ifdef TCPECHO_CATCH2_V3
#include <catch2/catch_test_macros.hpp>
#else
#include <catch2/catch.hpp>
#endif
