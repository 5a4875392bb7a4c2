# One helper per kind of target, so flags, warnings and sanitizers are decided
# in one place.
option(SHARDWIRE_SANITIZE "Build with AddressSanitizer + UBSan" OFF)
# ThreadSanitizer (`make tsan`, tests/sanitizers/README.md): a build of its own,
# since TSan cannot be combined with AddressSanitizer. -O1 keeps the suite
# fast enough under TSan's slowdown while stacks stay readable.
option(SHARDWIRE_TSAN "Build with ThreadSanitizer" OFF)
if(SHARDWIRE_SANITIZE AND SHARDWIRE_TSAN)
  message(FATAL_ERROR "SHARDWIRE_SANITIZE and SHARDWIRE_TSAN exclude each "
                      "other (ASan and TSan cannot share a process)")
endif()

# TSan builds only: tests/sanitizers/caf_tsan_shim.cpp, linked into every
# executable, interposes the functions of Debian's uninstrumented
# libcaf_core.so that order hand-offs between threads (reference counts,
# mailboxes, actor turns) and tells TSan about that ordering. It must be in
# the executable itself (first in the dynamic linker's lookup order), so it
# is an object library added to each executable, not to a static library
# (whose members are pulled in only on demand).
if(SHARDWIRE_TSAN)
  add_library(shardwire_caf_tsan_shim OBJECT
              ${CMAKE_CURRENT_LIST_DIR}/../tests/sanitizers/caf_tsan_shim.cpp)
  target_compile_features(shardwire_caf_tsan_shim PRIVATE cxx_std_20)
  target_compile_options(shardwire_caf_tsan_shim PRIVATE -Wall -Wextra
                         -fsanitize=thread -O1 -fno-omit-frame-pointer)
endif()

# Debug information. "lines" (the default) is -g1: line tables and function
# names, which is what sanitizer reports, gdb backtraces, perf and callgrind
# annotation read, for less compile time than "full" (-g, which adds locals
# and types for stepping through code in gdb). docs/building.md has the
# figures.
set(SHARDWIRE_DEBUG_INFO "lines" CACHE STRING
    "Debug information in Debug and RelWithDebInfo builds: lines or full")
set_property(CACHE SHARDWIRE_DEBUG_INFO PROPERTY STRINGS lines full)
if(NOT SHARDWIRE_DEBUG_INFO MATCHES "^(lines|full)$")
  message(FATAL_ERROR "SHARDWIRE_DEBUG_INFO is '${SHARDWIRE_DEBUG_INFO}'; "
                      "it takes lines or full")
endif()

function(shardwire_apply_flags target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  if(SHARDWIRE_UNITY_BUILD)
    # A batch #includes its .cpp files, so GCC takes a struct of one .cpp
    # holding a type of that file's anonymous namespace for a header's.
    target_compile_options(${target} PRIVATE -Wno-subobject-linkage)
  endif()
  if(SHARDWIRE_DEBUG_INFO STREQUAL "lines")
    # After the build type's -g on the command line, so this level wins.
    target_compile_options(${target} PRIVATE
                           $<$<CONFIG:Debug,RelWithDebInfo>:-g1>)
  endif()
  if(SHARDWIRE_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined
                           -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
  if(SHARDWIRE_TSAN)
    target_compile_options(${target} PRIVATE -fsanitize=thread -O1
                           -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=thread)
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "EXECUTABLE")
      target_sources(${target} PRIVATE
                     $<TARGET_OBJECTS:shardwire_caf_tsan_shim>)
      target_link_libraries(${target} PRIVATE ${CMAKE_DL_LIBS})
    endif()
  endif()
endfunction()

function(shardwire_add_library name)
  add_library(shardwire_${name} ${ARGN})
  add_library(shardwire::${name} ALIAS shardwire_${name})
  # Headers are included by their path from the source root
  # ("runtime/runtime.hpp"); installed, that root is include/shardwire.
  target_include_directories(shardwire_${name} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/shardwire>)
  set_target_properties(shardwire_${name} PROPERTIES EXPORT_NAME ${name})
  shardwire_apply_flags(shardwire_${name})
endfunction()

# shardwire_add_test(<name> <source> [TIMEOUT s] [LABELS l...] [LIBS t...])
# (LIBS: libraries beyond shardwire::transports, e.g. shardwire::sim)
function(shardwire_add_test name source)
  cmake_parse_arguments(T "" "TIMEOUT" "LABELS;LIBS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${name} ${source})
  target_link_libraries(${name} PRIVATE shardwire::transports ${T_LIBS}
                        shardwire_test_main)
  shardwire_apply_flags(${name})
  # Every test runs twice: with the co-located fast path (the default) and
  # with every message queued, so both delivery modes keep all guarantees.
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
                       LABELS "${T_LABELS};fast_path")
  add_test(NAME ${name}_queued COMMAND ${name})
  set_tests_properties(${name}_queued PROPERTIES TIMEOUT ${T_TIMEOUT}
                       LABELS "${T_LABELS};queued"
                       ENVIRONMENT "SHARDWIRE_FAST_PATH=0")
endfunction()

function(shardwire_add_demo name)
  add_executable(${name} ${ARGN})
  # tools: every program serves --metrics (tools/metrics_endpoint.hpp).
  target_link_libraries(${name} PRIVATE shardwire::tools)
  shardwire_apply_flags(${name})
endfunction()
