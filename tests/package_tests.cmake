# Packaging tests: what libsupcon.so exports and depends on, a program built against the
# installed package with CMake and with pkg-config, and the API reference against the
# headers. Plus the examples, run as users would.

find_program(SUPCON_BASH bash REQUIRED)

set(_supcon_cuda_module "")
if(TARGET supcon_cuda)
  set(_supcon_cuda_module $<TARGET_FILE:supcon_cuda>)
elseif(SUPCON_HAVE_CUDA)
  set(_supcon_cuda_module
      ${CMAKE_LIBRARY_OUTPUT_DIRECTORY}/${CMAKE_SHARED_MODULE_PREFIX}supcon_cuda${CMAKE_SHARED_MODULE_SUFFIX})
endif()

add_test(NAME package_exports
  COMMAND ${SUPCON_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/test_exports.sh
          $<TARGET_FILE:supcon> lib${PROJECT_NAME}.so.${PROJECT_VERSION_MAJOR}
          ${PROJECT_SOURCE_DIR}/include/supcon ${_supcon_cuda_module})
set_tests_properties(package_exports PROPERTIES LABELS "package")

add_test(NAME package_install
  COMMAND ${CMAKE_COMMAND} -E env CMAKE_COMMAND=${CMAKE_COMMAND}
          ${SUPCON_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/test_install.sh
          ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR} ${CMAKE_INSTALL_LIBDIR}
          ${CMAKE_C_COMPILER} ${PROJECT_VERSION} "${SUPCON_SANITIZE}")
# Builds three small CMake projects: give it room on a slow machine.
set_tests_properties(package_install PROPERTIES LABELS "package" TIMEOUT 600)

# docs/api.md names every SUPCON_API function of the headers, and shows no call to one that
# is gone: the hand-written reference cannot fall behind the API unnoticed. Needs no build.
add_test(NAME package_api_doc
  COMMAND ${SUPCON_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/test_api_doc.sh
          ${PROJECT_SOURCE_DIR}/include/supcon ${PROJECT_SOURCE_DIR}/docs/api.md)
set_tests_properties(package_api_doc PROPERTIES LABELS "package")

if(TARGET loss_in_your_trainer)
  add_test(NAME example_loss_in_your_trainer COMMAND loss_in_your_trainer)
  set_tests_properties(example_loss_in_your_trainer PROPERTIES LABELS "example")
endif()
