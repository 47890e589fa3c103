/* Learning-rate schedules against tests/fixtures/optim_lr.txt (the reference's formulas in
 * plain Python, gen_optim_fixtures.py): every epoch and every iteration of the first epochs
 * of seven configurations, bit for bit; the automatic warm-up rule; the program defaults;
 * argument errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "supcon/supcon.h"
#include "test_util.h"

static tu_fixture fx;

static int setup(void **unused) {
    return tu_fixture_load(&fx, SUPCON_TEST_FIXTURES "/optim_lr.txt");
}

static int teardown(void **unused) {
    tu_fixture_free(&fx);
    return 0;
}

/* Bits of two doubles equal (the schedule is computed in Python's operation order). */
static int same_double(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static void test_fixture_configs(void **unused) {
    const int64_t ncfg = tu_fixture_int(&fx, "configs", -1);
    assert_true(ncfg >= 7);
    for (int64_t k = 0; k < ncfg; k++) {
        char key[64];
        snprintf(key, sizeof key, "cfg%lld", (long long)k);
        double v[32];
        int64_t n = tu_fixture_doubles(&fx, key, v, 32);
        assert_true(n >= 12);
        const supcon_program program = (supcon_program)(int)v[0];
        const int64_t batch = (int64_t)v[1];
        const int warm_flag = (int)v[2];
        supcon_lr_config c = supcon_lr_config_for_program(program);
        c.learning_rate = v[3];
        c.epochs = (int)v[4];
        c.cosine = (int)v[5];
        c.decay_rate = v[6];
        c.warm_epochs = (int)v[7];
        c.warmup_from = v[8];
        const int64_t ipe = (int64_t)v[9];
        const int warm = (int)v[10];
        c.num_decay_epochs = (int)v[11];
        for (int m = 0; m < c.num_decay_epochs; m++) c.decay_epochs[m] = (int)v[12 + m];
        /* the reference's rule for turning warm-up on */
        assert_int_equal(supcon_lr_should_warm(program, batch, warm_flag), warm);
        c.warm = warm;

        double want, got;
        snprintf(key, sizeof key, "cfg%lld_warmup_to", (long long)k);
        want = tu_fixture_double(&fx, key, -1);
        assert_int_equal(supcon_lr_warmup_to(&c, &got), SUPCON_OK);
        if (!same_double(got, want)) fail_msg("cfg%lld warmup_to: %.17g, Python %.17g", (long long)k, got, want);

        snprintf(key, sizeof key, "cfg%lld_epoch", (long long)k);
        double *ev = malloc(sizeof(double) * (size_t)c.epochs);
        assert_int_equal(tu_fixture_doubles(&fx, key, ev, c.epochs), c.epochs);
        for (int e = 1; e <= c.epochs; e++) {
            assert_int_equal(supcon_lr_epoch(&c, e, &got), SUPCON_OK);
            if (!same_double(got, ev[e - 1]))
                fail_msg("cfg%lld epoch %d: %.17g, Python %.17g", (long long)k, e, got, ev[e - 1]);
        }

        snprintf(key, sizeof key, "cfg%lld_iter_epochs", (long long)k);
        const int last = (int)tu_fixture_int(&fx, key, -1);
        assert_true(last >= 1);
        snprintf(key, sizeof key, "cfg%lld_iter", (long long)k);
        const int64_t ni = (int64_t)last * ipe;
        double *iv = malloc(sizeof(double) * (size_t)ni);
        assert_int_equal(tu_fixture_doubles(&fx, key, iv, ni), ni);
        for (int e = 1; e <= last; e++)
            for (int64_t i = 0; i < ipe; i++) {
                assert_int_equal(supcon_lr_iteration(&c, e, i, ipe, &got), SUPCON_OK);
                const double w = iv[(e - 1) * ipe + i];
                if (!same_double(got, w))
                    fail_msg("cfg%lld epoch %d iter %lld: %.17g, Python %.17g", (long long)k, e, (long long)i, got, w);
            }
        /* after warm-up (and without it) an iteration's rate is its epoch's */
        for (int e = c.warm ? c.warm_epochs + 1 : 1; e <= c.epochs; e += 37) {
            assert_int_equal(supcon_lr_iteration(&c, e, ipe - 1, ipe, &got), SUPCON_OK);
            assert_true(same_double(got, ev[e - 1]));
        }
        free(ev);
        free(iv);
    }
}

static void test_defaults(void **unused) {
    supcon_lr_config c = supcon_lr_config_default();
    assert_int_equal(c.struct_size, sizeof c);
    assert_true(c.learning_rate == 0.05 && c.epochs == 1000 && c.decay_rate == 0.1 && !c.cosine && !c.warm);
    assert_int_equal(c.num_decay_epochs, 3);
    assert_int_equal(c.decay_epochs[0], 700);
    assert_int_equal(c.decay_epochs[2], 900);
    c = supcon_lr_config_for_program(SUPCON_PROGRAM_CROSS_ENTROPY);
    assert_true(c.learning_rate == 0.2 && c.epochs == 500 && c.decay_epochs[1] == 400);
    c = supcon_lr_config_for_program(SUPCON_PROGRAM_LINEAR);
    assert_true(c.learning_rate == 0.1 && c.epochs == 100 && c.decay_rate == 0.2 && c.decay_epochs[2] == 90);
    assert_true(c.warm_epochs == 10 && c.warmup_from == 0.01);

    supcon_sgd_config s = supcon_sgd_config_default();
    assert_true(s.learning_rate == 0.05 && s.momentum == 0.9 && s.weight_decay == 1e-4 && s.dampening == 0 &&
                !s.nesterov);
    s = supcon_sgd_config_for_program(SUPCON_PROGRAM_CROSS_ENTROPY);
    assert_true(s.learning_rate == 0.2 && s.weight_decay == 1e-4);
    s = supcon_sgd_config_for_program(SUPCON_PROGRAM_LINEAR);
    assert_true(s.learning_rate == 0.1 && s.weight_decay == 0.0 && s.momentum == 0.9);
}

static void test_should_warm(void **unused) {
    assert_int_equal(supcon_lr_should_warm(SUPCON_PROGRAM_CONTRASTIVE, 256, 0), 0);
    assert_int_equal(supcon_lr_should_warm(SUPCON_PROGRAM_CONTRASTIVE, 257, 0), 1);
    assert_int_equal(supcon_lr_should_warm(SUPCON_PROGRAM_CROSS_ENTROPY, 1024, 0), 1);
    assert_int_equal(supcon_lr_should_warm(SUPCON_PROGRAM_LINEAR, 1024, 0), 0);
    assert_int_equal(supcon_lr_should_warm(SUPCON_PROGRAM_LINEAR, 16, 1), 1);
}

/* Hand-checked values: cosine at e = E is eta_min; step decay counts milestones passed. */
static void test_known_values(void **unused) {
    supcon_lr_config c = supcon_lr_config_default();
    double lr;
    assert_int_equal(supcon_lr_epoch(&c, 700, &lr), SUPCON_OK);
    assert_true(lr == 0.05);
    assert_int_equal(supcon_lr_epoch(&c, 701, &lr), SUPCON_OK);
    assert_true(fabs(lr - 0.005) < 1e-15);
    assert_int_equal(supcon_lr_epoch(&c, 1000, &lr), SUPCON_OK);
    assert_true(fabs(lr - 0.05e-3) < 1e-15);
    c.cosine = 1;
    assert_int_equal(supcon_lr_epoch(&c, 0, &lr), SUPCON_OK);
    assert_true(fabs(lr - 0.05) < 1e-15);
    assert_int_equal(supcon_lr_epoch(&c, 1000, &lr), SUPCON_OK);
    assert_true(fabs(lr - 0.05e-3) < 1e-15);
    c.warm = 1;
    assert_int_equal(supcon_lr_iteration(&c, 1, 0, 10, &lr), SUPCON_OK);
    assert_true(lr == 0.01);
}

static void test_errors(void **unused) {
    supcon_lr_config c = supcon_lr_config_default();
    double lr = 0;
    assert_int_equal(supcon_lr_epoch(NULL, 1, &lr), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_lr_epoch(&c, 1, NULL), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_lr_epoch(&c, -1, &lr), SUPCON_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(supcon_context_last_error(NULL), "epoch -1"));
    assert_int_equal(supcon_lr_iteration(&c, 0, 0, 10, &lr), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_lr_iteration(&c, 1, 10, 10, &lr), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_lr_iteration(&c, 1, -1, 10, &lr), SUPCON_ERR_INVALID_ARGUMENT);
    assert_int_equal(supcon_lr_iteration(&c, 1, 0, 0, &lr), SUPCON_ERR_INVALID_ARGUMENT);
    supcon_lr_config b = c;
    b.struct_size = 3;
    assert_int_equal(supcon_lr_epoch(&b, 1, &lr), SUPCON_ERR_INVALID_ARGUMENT);
    b = c, b.epochs = 0;
    assert_int_equal(supcon_lr_epoch(&b, 1, &lr), SUPCON_ERR_INVALID_ARGUMENT);
    b = c, b.learning_rate = NAN;
    assert_int_equal(supcon_lr_epoch(&b, 1, &lr), SUPCON_ERR_INVALID_ARGUMENT);
    b = c, b.num_decay_epochs = SUPCON_LR_MAX_DECAY_EPOCHS + 1;
    assert_int_equal(supcon_lr_warmup_to(&b, &lr), SUPCON_ERR_INVALID_ARGUMENT);
    b = c, b.warm_epochs = 0;
    assert_int_equal(supcon_lr_iteration(&b, 1, 0, 5, &lr), SUPCON_ERR_INVALID_ARGUMENT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_configs), cmocka_unit_test(test_defaults), cmocka_unit_test(test_should_warm),
        cmocka_unit_test(test_known_values), cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
