// Catch2 v2 (Debian 12) or v3, whichever meson found.
#pragma once
#ifdef TCPECHO_CATCH2_V3
#include <catch2/catch_test_macros.hpp>
#else
#include <catch2/catch.hpp>
#endif
