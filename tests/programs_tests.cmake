# End-to-end smoke tests of the `supcon` tool (examples/supcon): a few steps of each
# subcommand on a slice of Fashion-MNIST, checkpoints, resume, Ctrl-C and error paths.
# Skipped (77) without the dataset-fashion-mnist package.
if(TARGET supcon_cli)
  add_test(NAME test_programs
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_programs.sh $<TARGET_FILE:supcon_cli>)
  set_tests_properties(test_programs PROPERTIES SKIP_RETURN_CODE 77 LABELS "programs" TIMEOUT 600)
endif()
