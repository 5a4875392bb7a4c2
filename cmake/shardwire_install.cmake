# `cmake --install` and `cpack -G DEB` (docs/install.md): the libraries,
# every header under its source path below include/shardwire, a CMake
# package (find_package(shardwire) -> shardwire::runtime, ::actors,
# ::transports, ::sim, ::tools) and a pkg-config file.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(SHARDWIRE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/shardwire)

# shardwire_asio is Asio compiled once; runtime links it, so it is part of
# the package too (as shardwire::asio).
set_target_properties(shardwire_asio PROPERTIES EXPORT_NAME asio)
install(TARGETS shardwire_asio shardwire_runtime shardwire_actors
                shardwire_transports shardwire_sim shardwire_tools
        EXPORT shardwireTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
foreach(dir runtime actors transports sim tools)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir}/
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/shardwire/${dir}
          FILES_MATCHING PATTERN "*.hpp")
endforeach()
install(EXPORT shardwireTargets NAMESPACE shardwire::
        DESTINATION ${SHARDWIRE_CMAKE_DIR})
# Debian's libcaf-dev has no CMake package: the package brings the module
# that finds it.
install(FILES ${PROJECT_SOURCE_DIR}/cmake/FindCAF.cmake
        DESTINATION ${SHARDWIRE_CMAKE_DIR})
configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/shardwireConfig.cmake.in
  ${PROJECT_BINARY_DIR}/shardwireConfig.cmake
  INSTALL_DESTINATION ${SHARDWIRE_CMAKE_DIR})
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/shardwireConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/shardwireConfig.cmake
              ${PROJECT_BINARY_DIR}/shardwireConfigVersion.cmake
        DESTINATION ${SHARDWIRE_CMAKE_DIR})

# pkg-config: the libraries in link order, Asio's definitions, C++20. The
# prefix is found from the file's own place, so the same file serves
# --prefix installs and the Debian package.
file(RELATIVE_PATH SHARDWIRE_PC_TO_PREFIX
     "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
configure_file(${PROJECT_SOURCE_DIR}/cmake/shardwire.pc.in
               ${PROJECT_BINARY_DIR}/shardwire.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/shardwire.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# cpack -G DEB (from the build directory): a -dev package of the above.
set(CPACK_PACKAGE_NAME shardwire-dev)
set(CPACK_PACKAGE_VENDOR "shardwire")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "asyncio's transports and protocols as CAF actors (C++20, static libraries and headers)")
set(CPACK_PACKAGE_CONTACT "shardwire developers <shardwire@localhost>")
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libcaf-dev (>= 0.17.6), libasio-dev, libhttp-parser-dev, libssl-dev (>= 3), g++ (>= 4:12)")
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
include(CPack)
