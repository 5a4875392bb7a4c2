# libFuzzer builds (tests/fuzz, `make fuzz`): clang only. Everything a fuzz
# target runs that is shardwire's own code is compiled here, instrumented
# for coverage and with AddressSanitizer + UBSan; CAF stays the Debian
# build (g++, libstdc++, which clang on Debian links as well).
#
# UBSan findings abort (-fno-sanitize-recover), so libFuzzer records them
# as crashes instead of printing and moving on.

if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "SHARDWIRE_FUZZ needs clang (libFuzzer): configure "
                      "with -DCMAKE_CXX_COMPILER=clang++")
endif()

set(SHARDWIRE_FUZZ_SANITIZERS -fsanitize=address,undefined
    -fno-sanitize-recover=undefined -fno-omit-frame-pointer)

# shardwire_add_fuzz_library(<name> <sources relative to the project root>)
# A static library of the sources under test, instrumented for libFuzzer.
function(shardwire_add_fuzz_library name)
  list(TRANSFORM ARGN PREPEND ${PROJECT_SOURCE_DIR}/)
  add_library(${name} STATIC ${ARGN})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_features(${name} PUBLIC cxx_std_20)
  target_compile_options(${name} PRIVATE -Wall -Wextra
                         -fsanitize=fuzzer-no-link ${SHARDWIRE_FUZZ_SANITIZERS})
endfunction()

# shardwire_add_fuzzer(<name> <source> LIBS <libraries...>)
# A libFuzzer executable; `make fuzz` runs it on tests/fuzz/corpus/<name>.
function(shardwire_add_fuzzer name source)
  cmake_parse_arguments(F "" "" "LIBS" ${ARGN})
  add_executable(${name} ${source})
  target_link_libraries(${name} PRIVATE ${F_LIBS})
  target_compile_options(${name} PRIVATE -Wall -Wextra -fsanitize=fuzzer
                         ${SHARDWIRE_FUZZ_SANITIZERS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer
                      ${SHARDWIRE_FUZZ_SANITIZERS})
  add_dependencies(shardwire_fuzzers ${name})
endfunction()
