// Compiled once so that CMake builds the precompiled headers the tests share
// (tests/CMakeLists.txt, QS_PCH).
