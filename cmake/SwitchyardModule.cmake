# switchyard_add_module(): the one way a Switchyard module is built, in this tree and out of it.
#
#   switchyard_add_module(NAME SOURCES... [TARGET target] [OUTPUT_DIRECTORY dir] [NO_INSTALL])
#
# Makes libsy_NAME.so (target sy_NAME unless TARGET names another), which `module: NAME` finds
# on the proxy's module_path, with what every module needs:
#   - hidden visibility: the stamp and the entry point are exported by their macros, nothing
#     else is;
#   - -fno-gnu-unique (GCC, C++): glibc never unloads a library holding STB_GNU_UNIQUE symbols
#     (statics of inline functions), so hot swap would leave every old version mapped;
#   - -z defs: a module must not depend on the proxy's symbols (it is loaded RTLD_LOCAL);
#   - C11 / C++20 (the SDK needs C++20), -Wall -Wextra;
#   - the output in OUTPUT_DIRECTORY (default: ${CMAKE_BINARY_DIR}/modules for this tree's
#     bundled modules, where the proxy's tests look; the build directory, as for any library,
#     for a project using the installed package), and an install rule to
#     ${SY_MODULE_INSTALL_DIR} (default: <libdir>/switchyard/modules) unless NO_INSTALL.
# The headers come from the Switchyard::module target when the installed package defines it
# (find_package(Switchyard)), else from SWITCHYARD_INCLUDE_DIR and SWITCHYARD_SDK_DIR (this
# tree's abi/include and abi/sdk, as the bundled modules set them).
include_guard(GLOBAL)
include(GNUInstallDirs)

set(SY_MODULE_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/switchyard/modules"
    CACHE STRING "Where cmake --install puts Switchyard modules")

function(switchyard_add_module name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "NO_INSTALL" "TARGET;OUTPUT_DIRECTORY" "")
  set(sources ${arg_UNPARSED_ARGUMENTS})
  if(NOT sources)
    message(FATAL_ERROR "switchyard_add_module(${name}): give at least one source file")
  endif()
  set(target "sy_${name}")
  if(arg_TARGET)
    set(target "${arg_TARGET}")
  endif()
  set(out "${arg_OUTPUT_DIRECTORY}")
  if(NOT out AND NOT TARGET Switchyard::module)
    set(out "${CMAKE_BINARY_DIR}/modules")
  endif()

  add_library(${target} MODULE ${sources})
  if(TARGET Switchyard::module)
    target_link_libraries(${target} PRIVATE Switchyard::module)
  else()
    foreach(dir IN ITEMS "${SWITCHYARD_INCLUDE_DIR}" "${SWITCHYARD_SDK_DIR}")
      if(dir)
        target_include_directories(${target} PRIVATE "${dir}")
      endif()
    endforeach()
  endif()
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    OUTPUT_NAME "sy_${name}"
    C_STANDARD 11
    C_STANDARD_REQUIRED ON
    CXX_STANDARD 20
    CXX_STANDARD_REQUIRED ON
    CXX_EXTENSIONS OFF
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(out)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${out}")
  endif()
  target_compile_options(${target} PRIVATE -Wall -Wextra
                                           $<$<COMPILE_LANG_AND_ID:CXX,GNU>:-fno-gnu-unique>)
  target_link_options(${target} PRIVATE -Wl,-z,defs)
  if(NOT arg_NO_INSTALL)
    install(TARGETS ${target} LIBRARY DESTINATION "${SY_MODULE_INSTALL_DIR}")
  endif()
endfunction()
