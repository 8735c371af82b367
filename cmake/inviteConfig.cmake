# invite's CMake package: find_package(invite CONFIG REQUIRED) gives
#   invite::invite                 the runtime: libinvite.a (static) with its include directory
#   invite::shared                 the runtime as libinvite.so, for those who want it shared
#   invite_instrument(<target> [TESTS a.ic ...])
#                                  compiles the target's sources that have a .ic beside them (or the
#                                  sources named by the listed .ic files) instrumented, and links the
#                                  runtime. Instrumented copies are generated at build time into the
#                                  build tree (never beside the sources); the .ic is a dependency,
#                                  so editing only the .ic rebuilds.
# Installed by scripts/install.sh as PREFIX/lib/cmake/invite/; relocatable.

get_filename_component(_invite_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

set(INVITE_PRECOMPILE "${_invite_prefix}/bin/invite-precompile" CACHE FILEPATH "invite-precompile")
set(INVITE_CC "${_invite_prefix}/bin/invite-cc")
set(INVITE_INCLUDE_DIR "${_invite_prefix}/include")

if(NOT TARGET invite::invite)
  add_library(invite::invite STATIC IMPORTED)
  set_target_properties(invite::invite PROPERTIES
    IMPORTED_LOCATION "${_invite_prefix}/lib/libinvite.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "${_invite_prefix}/include"
    INTERFACE_LINK_LIBRARIES "gcc_s;util;rt;pthread;m;dl")
endif()
if(NOT TARGET invite::shared)
  add_library(invite::shared SHARED IMPORTED)
  set_target_properties(invite::shared PROPERTIES
    IMPORTED_LOCATION "${_invite_prefix}/lib/libinvite.so.0"
    IMPORTED_SONAME "libinvite.so.0"
    INTERFACE_INCLUDE_DIRECTORIES "${_invite_prefix}/include")
endif()

function(invite_instrument target)
  cmake_parse_arguments(PARSE_ARGV 1 _inv "" "" "TESTS")
  if(_inv_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "invite_instrument(${target}): unknown arguments ${_inv_UNPARSED_ARGUMENTS}")
  endif()
  get_target_property(_sources ${target} SOURCES)
  get_target_property(_srcdir ${target} SOURCE_DIR)
  set(_tests "")
  foreach(_ic IN LISTS _inv_TESTS)
    get_filename_component(_ic "${_ic}" ABSOLUTE BASE_DIR "${_srcdir}")
    if(NOT EXISTS "${_ic}")
      message(FATAL_ERROR "invite_instrument(${target}): ${_ic} does not exist")
    endif()
    list(APPEND _tests "${_ic}")
  endforeach()
  set(_new "")
  set(_used "")
  foreach(_src IN LISTS _sources)
    if(_src MATCHES "\\$<")   # a generator expression: not a file name yet
      list(APPEND _new "${_src}")
      continue()
    endif()
    get_filename_component(_abs "${_src}" ABSOLUTE BASE_DIR "${_srcdir}")
    get_filename_component(_dir "${_abs}" DIRECTORY)
    get_filename_component(_stem "${_abs}" NAME_WE)
    get_filename_component(_ext "${_abs}" LAST_EXT)
    set(_ic "")
    if(_ext STREQUAL ".c")
      if(_inv_TESTS)
        foreach(_t IN LISTS _tests)
          get_filename_component(_tdir "${_t}" DIRECTORY)
          get_filename_component(_tstem "${_t}" NAME_WE)
          if(_tdir STREQUAL _dir AND _tstem STREQUAL _stem)
            set(_ic "${_t}")
          endif()
        endforeach()
      elseif(EXISTS "${_dir}/${_stem}.ic")
        set(_ic "${_dir}/${_stem}.ic")
      endif()
    endif()
    if(_ic STREQUAL "")
      list(APPEND _new "${_src}")
      continue()
    endif()
    list(APPEND _used "${_ic}")
    file(RELATIVE_PATH _rel "${_srcdir}" "${_abs}")
    string(REPLACE "../" "__/" _rel "${_rel}")
    set(_out "${CMAKE_CURRENT_BINARY_DIR}/invite-src/${target}/${_rel}")
    get_filename_component(_outdir "${_out}" DIRECTORY)
    add_custom_command(
      OUTPUT "${_out}"
      COMMAND "${CMAKE_COMMAND}" -E make_directory "${_outdir}"
      COMMAND "${INVITE_PRECOMPILE}" "${_abs}" "${_ic}" -o "${_out}"
      DEPENDS "${_abs}" "${_ic}" "${INVITE_PRECOMPILE}"
      COMMENT "invite: instrumenting ${_src} with ${_stem}.ic"
      VERBATIM)
    # The copy lives in the build tree: #include "x.h" must still find the headers beside x.c.
    set_source_files_properties("${_out}" PROPERTIES
      GENERATED TRUE
      COMPILE_OPTIONS "-iquote;${_dir}")
    list(APPEND _new "${_out}")
  endforeach()
  foreach(_t IN LISTS _tests)
    if(NOT _t IN_LIST _used)
      message(FATAL_ERROR "invite_instrument(${target}): ${_t} matches no .c source of ${target}")
    endif()
  endforeach()
  set_property(TARGET ${target} PROPERTY SOURCES ${_new})
  # Not target_link_libraries: that would clash with a project's plain (keyword-less) calls.
  set_property(TARGET ${target} APPEND PROPERTY LINK_LIBRARIES invite::invite)
  get_target_property(_type ${target} TYPE)
  if(_type STREQUAL "STATIC_LIBRARY")
    set_property(TARGET ${target} APPEND PROPERTY INTERFACE_LINK_LIBRARIES "$<LINK_ONLY:invite::invite>")
  endif()
endfunction()
