# Feature analysis (include/supcon/analysis.h): the t-SNE internals against finite
# differences and exact references (static archive: hidden symbols), embeddings of planted
# clusters, trustworthiness and kNN accuracy against hand-computed values and scikit-learn
# (tests/fixtures/gen_analysis_fixtures.py), and every documented misuse.
supcon_add_internal_test(test_analysis_tsne SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_analysis_tsne.c LABELS analysis)
supcon_add_test(test_analysis_embed SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_analysis_embed.c LABELS analysis)
supcon_add_test(test_analysis_metrics SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_analysis_metrics.c LABELS analysis)
supcon_add_test(test_analysis_misuse SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_analysis_misuse.c LABELS analysis)
