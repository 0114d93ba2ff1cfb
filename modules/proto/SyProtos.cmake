# sy_module_protos(TARGET <target> PROTOS <path.proto>...)
#
# Compiles the named .proto files (paths relative to this folder, e.g.
# envoy/service/auth/v3/external_auth.proto) with protoc into the target's build folder and
# adds the generated C++ to it. Every file here is LITE_RUNTIME: lite code registers nothing in
# protobuf's process-wide descriptor pool, where a second copy of the same file (the next
# generation of a hot-swapped module, or ext_authz next to ext_proc) aborts the process with
# "File already exists in database". The well-known types (Struct, Any, Duration, ...) come
# from libprotobuf itself, registered once for the process.
#
# Modules include this file by path, so it works for an out-of-tree build of one module too:
#   include(${CMAKE_CURRENT_LIST_DIR}/../proto/SyProtos.cmake)
# Once per directory, not per build: find_package makes imported targets (protobuf::protoc,
# protobuf::libprotobuf) visible only in the directory that found them.
include_guard(DIRECTORY)
find_package(Protobuf REQUIRED)
set(SY_PROTO_DIR "${CMAKE_CURRENT_LIST_DIR}")

function(sy_module_protos)
  cmake_parse_arguments(ARG "" "TARGET" "PROTOS" ${ARGN})
  set(out "${CMAKE_CURRENT_BINARY_DIR}/proto")
  set(sources)
  foreach(proto IN LISTS ARG_PROTOS)
    string(REGEX REPLACE "\\.proto$" "" stem "${proto}")
    set(cc "${out}/${stem}.pb.cc")
    add_custom_command(
      OUTPUT "${cc}" "${out}/${stem}.pb.h"
      COMMAND ${CMAKE_COMMAND} -E make_directory "${out}"
      COMMAND protobuf::protoc --cpp_out=${out} -I "${SY_PROTO_DIR}"
              -I "${Protobuf_INCLUDE_DIRS}" "${SY_PROTO_DIR}/${proto}"
      DEPENDS "${SY_PROTO_DIR}/${proto}" protobuf::protoc
      COMMENT "protoc ${proto}"
      VERBATIM)
    list(APPEND sources "${cc}")
  endforeach()
  # Generated code is not ours to warn about.
  set_source_files_properties(${sources} PROPERTIES COMPILE_OPTIONS "-w")
  target_sources(${ARG_TARGET} PRIVATE ${sources})
  target_include_directories(${ARG_TARGET} PRIVATE "${out}")
  target_link_libraries(${ARG_TARGET} PRIVATE protobuf::libprotobuf)
endfunction()
