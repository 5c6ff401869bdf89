# `cmake --install build --prefix P`: the static libraries the public API needs, its headers, a CMake package
# (find_package(tritter) → tritter::tritter) and tritter.pc (pkg-config --static --cflags --libs tritter).
# Layout: P/lib/libtritter_*.a, P/include/tritter/{tritter.h, core/error.h}, P/lib/cmake/tritter/,
# P/lib/pkgconfig/tritter.pc. The CLI, the curation layer (data) and the tests are not installed.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Link order for a static link: each library before the ones it uses.
set(TRITTER_INSTALLED_LAYERS api train infer model io text kernels core)
# What src/tritter.h includes, transitively, of the project (tests/layering_test.sh keeps it this short).
set(TRITTER_PUBLIC_HEADERS tritter.h core/error.h)

target_include_directories(tritter_api INTERFACE
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/tritter>)
set(installed_targets)
foreach(layer ${TRITTER_INSTALLED_LAYERS})
  list(APPEND installed_targets tritter_${layer})
  set_target_properties(tritter_${layer} PROPERTIES EXPORT_NAME ${layer})
endforeach()
set_target_properties(tritter_api PROPERTIES EXPORT_NAME tritter)  # tritter::tritter

install(TARGETS ${installed_targets} EXPORT tritterTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
foreach(header ${TRITTER_PUBLIC_HEADERS})
  get_filename_component(dir ${header} DIRECTORY)
  install(FILES ${PROJECT_SOURCE_DIR}/src/${header} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tritter/${dir})
endforeach()

set(config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/tritter)
install(EXPORT tritterTargets NAMESPACE tritter:: DESTINATION ${config_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/tritterConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/tritterConfig.cmake INSTALL_DESTINATION ${config_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/tritterConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/tritterConfig.cmake ${PROJECT_BINARY_DIR}/tritterConfigVersion.cmake
        DESTINATION ${config_dir})

file(RELATIVE_PATH TRITTER_PC_TO_PREFIX /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)  # relocatable: ../..
string(REGEX REPLACE "/$" "" TRITTER_PC_TO_PREFIX "${TRITTER_PC_TO_PREFIX}")
set(TRITTER_PC_LIBS "")
foreach(layer ${TRITTER_INSTALLED_LAYERS})
  string(APPEND TRITTER_PC_LIBS " -ltritter_${layer}")
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/tritter.pc.in ${PROJECT_BINARY_DIR}/tritter.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/tritter.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
