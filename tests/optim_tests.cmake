# Optimisation (lib/optim, src/cpu/sgd.c): SGD against torch.optim.SGD fixtures and a plain
# loop, state save/load and resume, a model's parameters; the learning-rate schedules against
# the reference's formulas (tests/fixtures/gen_optim_fixtures.py). The SGD test reads the
# optimiser's internals: static archive.
supcon_add_test(test_optim_lr SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_optim_lr.c LABELS optim)
supcon_add_test(test_optim_sgd SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_optim_sgd.c LABELS optim LIBS supcon_static)
target_include_directories(test_optim_sgd PRIVATE ${PROJECT_SOURCE_DIR}/lib)
# The plain loop it compares with rounds every operation, as the kernel does.
target_compile_options(test_optim_sgd PRIVATE -ffp-contract=off)
