# The pictures of the `supcon` tool (examples/supcon/plot): font, ticks, scatter plot, training
# curves, log.csv reading and the error paths. The plot sources are compiled into the test.
set(SUPCON_PLOT_DIR ${PROJECT_SOURCE_DIR}/examples/supcon/plot)
supcon_add_test(test_plot
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_plot.c ${SUPCON_PLOT_DIR}/plot_canvas.c ${SUPCON_PLOT_DIR}/plot_font.c
          ${SUPCON_PLOT_DIR}/plot_png.c ${SUPCON_PLOT_DIR}/plot_log.c ${SUPCON_PLOT_DIR}/plot_scatter.c
          ${SUPCON_PLOT_DIR}/plot_curves.c
  LABELS programs
  LIBS PNG::PNG)
target_include_directories(test_plot PRIVATE ${SUPCON_PLOT_DIR})
