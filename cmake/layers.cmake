# tritter_unity(TARGET): compile the target's sources in batches of 8 per compiler run (TRITTER_UNITY_BUILD): the
# headers every file includes (nlohmann/json, CLI11, the standard library) are parsed and their templates compiled
# once per batch instead of once per file, which roughly halves a clean build on 2 cores. The kernels stay one
# file per run: their SIMD regions carry per-file target attributes and their numerics are tested file by file.
# A helper in an anonymous namespace must then be unique across its layer, and a test helper across its tests/LAYER
# folder (a clash fails the build; an overload with other parameters would not, so give helpers distinct names).
function(tritter_unity target)
  if(TRITTER_UNITY_BUILD AND NOT target STREQUAL "tritter_kernels")
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 8)
  endif()
endfunction()

# tritter_layer(NAME DEPS ... [EXCLUDE file.cpp ...]): one static library per folder of src/ (sources found by
# glob, sub-folders included, CUDA files excluded, EXCLUDE'd files left to a library of their own). A layer with no
# sources yet is an INTERFACE library so dependants still link.
function(tritter_layer name)
  cmake_parse_arguments(ARG "" "" "DEPS;EXCLUDE" ${ARGN})
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*.cpp)
  foreach(ex ${ARG_EXCLUDE})
    list(REMOVE_ITEM sources ${PROJECT_SOURCE_DIR}/src/${name}/${ex})
  endforeach()
  if(sources)
    add_library(tritter_${name} STATIC ${sources})
    tritter_unity(tritter_${name})
    target_include_directories(tritter_${name} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/src>)
    target_link_libraries(tritter_${name} PUBLIC ${ARG_DEPS})
  else()
    add_library(tritter_${name} INTERFACE)
    target_include_directories(tritter_${name} INTERFACE $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/src>)
    target_link_libraries(tritter_${name} INTERFACE ${ARG_DEPS})
  endif()
endfunction()

# tritter_test_suite(LAYER): tests/LAYER/*_test.cpp become one GoogleTest program, each test a CTest case labelled
# LAYER (ctest -L io runs one layer's tests).
function(tritter_test_suite layer)
  file(GLOB sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/${layer}/*_test.cpp)
  if(NOT sources)
    return()
  endif()
  add_executable(tritter_${layer}_tests ${sources})
  tritter_unity(tritter_${layer}_tests)  # gtest and the project headers parsed once per batch, not per file
  target_include_directories(tritter_${layer}_tests PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(tritter_${layer}_tests PRIVATE tritter tritter_test_util GTest::gtest GTest::gtest_main)
  target_compile_definitions(tritter_${layer}_tests PRIVATE
      TRITTER_SOURCE_DIR="${PROJECT_SOURCE_DIR}" TRITTER_CLI="$<TARGET_FILE:tritter_cli>")
  add_dependencies(tritter_${layer}_tests tritter_cli)
  gtest_discover_tests(tritter_${layer}_tests DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 600 LABELS ${layer})
endfunction()
