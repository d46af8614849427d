# Shared build settings for every twinfleet target.

# Warnings and language level, applied through one interface target.
add_library(twinfleet_options INTERFACE)
add_library(twinfleet::options ALIAS twinfleet_options)
target_compile_features(twinfleet_options INTERFACE cxx_std_20)
target_compile_options(twinfleet_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
  -Wno-missing-field-initializers)
# Boost.JSON header-only parts stay out; we link the compiled library.
target_compile_definitions(twinfleet_options INTERFACE BOOST_ALLOW_DEPRECATED_HEADERS)

# Asio keeps freed coroutine frames and handler blocks per thread for reuse, 2 of each kind by
# default. A reported patch holds five frames, and a thread ends and starts tens of patches in
# one batch, so two kept blocks overflow and the frames went to malloc. 64 took the run's CPU
# per patch down ~1.2 µs (5 %); 256 did no better. The price is memory, +~100 B per idle
# device (bench/README.md, stop 17): a kept block is reused for anything it fits, so what an
# idle device holds (its timer's wait) may sit in a larger block. The value sizes a structure
# that every translation unit including Asio must agree on, so it is set for the whole tree.
add_compile_definitions(BOOST_ASIO_RECYCLING_ALLOCATOR_CACHE_SIZE=64)

# twinfleet_add_module(NAME SOURCES ... DEPS ...)
# A static library twinfleet_<NAME>, alias twinfleet::<NAME>, public headers under
# sim/<NAME>/include/twinfleet/<NAME>/.
function(twinfleet_add_module name)
  cmake_parse_arguments(arg "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(twinfleet_${name} STATIC ${arg_SOURCES})
  add_library(twinfleet::${name} ALIAS twinfleet_${name})
  target_include_directories(twinfleet_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_link_libraries(twinfleet_${name} PUBLIC twinfleet::options ${arg_DEPS} PRIVATE ${arg_PRIVATE_DEPS})
endfunction()

# twinfleet_add_test(NAME SOURCES ... DEPS ... [LABELS label...])
# One Catch2 executable; every TEST_CASE becomes its own ctest test.
function(twinfleet_add_test name)
  cmake_parse_arguments(arg "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE twinfleet::test_support ${arg_DEPS})
  # catch_discover_tests writes properties unquoted, so a label list would split into separate
  # properties: join the labels into one ("hub:unit"). `ctest -L` takes a regex, so
  # `ctest -L unit`, `-L integration` and `-L hub` still select by each part.
  list(JOIN arg_LABELS ":" labels)
  catch_discover_tests(${name}
    TEST_PREFIX "${name}: "
    PROPERTIES LABELS "${labels}" TIMEOUT 120
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
    DISCOVERY_TIMEOUT 30)
endfunction()
