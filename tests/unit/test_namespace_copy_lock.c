/* Pending-attribute claims are per path (fs/meta_cache.h meta_cache_apply_begin): a rename whose S3
 * copy is slow must not hold up a chmod of another file. In-memory store behind a fault-injecting
 * wrapper that delays CopyObject of one key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "test_read_util.h"

static fs_context ctx;

static int setup(void **state) { (void)state; tr_setup(&ctx); return 0; }
static int teardown(void **state) { (void)state; tr_teardown(&ctx); return 0; }

typedef struct {
    const char *from, *to;
    int rc;
} rename_job;

static void *rename_thread(void *arg)
{
    rename_job *j = arg;
    j->rc = ns_rename(&ctx, j->from, j->to, 0);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Review finding 18: a rename whose CopyObject is slow (a multi-GB object) must not hold up a chmod of
 * another file. The copy of "slow" takes 1.5 s (fault rule); the chmod of "quick" must finish well before
 * it, and both must take effect. With one global apply lock the chmod waited for the whole copy. */
static void test_slow_copy_does_not_block_chmod_of_other_file(void **state)
{
    (void)state;
    object_client *memory = ctx.objects;
    ctx.objects = objc_new_faulty(memory, 0);
    assert_non_null(ctx.objects);
    aws_error err;
    aws_error_clear(&err);
    kv_list none;
    kv_list_init(&none);
    assert_int_equal(ctx.objects->ops->put(ctx.objects, "slowcopy.bin", &none, (const uint8_t *)"s", 1, &err), 0);
    assert_int_equal(ctx.objects->ops->put(ctx.objects, "quick.bin", &none, (const uint8_t *)"q", 1, &err), 0);
    objc_fault_rule slow = { .ops_mask = OBJC_OP_COPY, .fail_count = 0, .key_substring = "slowcopy",
                             .delay_ms = 1500 };
    assert_int_equal(objc_faulty_add_rule(ctx.objects, &slow), 0);

    rename_job job = { "/slowcopy.bin", "/slowcopy2.bin", -1 };
    pthread_t t;
    double started = now_s();
    assert_int_equal(pthread_create(&t, NULL, rename_thread, &job), 0);
    usleep(200 * 1000);                     /* the rename is inside its copy now */
    assert_int_equal(ns_chmod(&ctx, "/quick.bin", 0640), 0);
    double chmod_done = now_s() - started;
    pthread_join(t, NULL);
    double rename_done = now_s() - started;
    assert_int_equal(job.rc, 0);
    assert_true(rename_done >= 1.4);        /* the delay rule really applied */
    assert_true(chmod_done < 1.0);

    objc_head head;
    kv_list_init(&head.metadata);
    assert_int_equal(ctx.objects->ops->head(ctx.objects, "quick.bin", &head, &err), 0);
    file_attrs attrs;
    attrs_from_metadata(&head.metadata, &attrs);
    assert_true(attrs.has_mode);
    assert_int_equal(attrs.mode & 07777, 0640);
    objc_head_free(&head);
    assert_int_equal(ctx.objects->ops->head(ctx.objects, "slowcopy2.bin", &head, &err), 0);
    objc_head_free(&head);

    objc_free(ctx.objects);                 /* the faulty wrapper only */
    ctx.objects = memory;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_copy_does_not_block_chmod_of_other_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
