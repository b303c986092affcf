/* The fault-injecting wrapper: rules fire exactly on the calls they name (operation mask, after N
 * successful calls, M times or forever, key substring), delays apply failing or not, a failed call
 * never reaches the wrapped client unless the fault is "after effect", GET bodies can be cut short,
 * rules change safely while other threads call, and everything else passes through unchanged. The
 * wrapped memory client's own call counts show what really reached "S3". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "object_client.h"
#include "objc_faulty.h"
#include "objc_memory.h"

typedef struct {
    object_client *inner;
    object_client *faulty;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || !(f->inner = objc_new_memory()) || !(f->faulty = objc_new_faulty(f->inner, 0)))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    objc_free(f->faulty);
    objc_free(f->inner);   /* not owned by the wrapper: still ours, and still valid */
    free(f);
    return 0;
}

static int put(object_client *c, const char *key, aws_error *err)
{
    return c->ops->put(c, key, NULL, (const uint8_t *)key, strlen(key), err);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void test_after_n_then_m_failures(void **state)
{
    fixture *f = *state;
    objc_fault_rule rule = { .ops_mask = OBJC_OP_PUT, .after_calls = 2, .fail_count = 2, .kind = AWS_ERR_SERVICE,
                             .http_status = 503, .code = "SlowDown" };
    assert_int_equal(objc_faulty_add_rule(f->faulty, &rule), 0);
    const char *keys[] = { "k1", "k2", "k3", "k4", "k5", "k6" };
    int expected[] = { 0, 0, AWS_ERR_SERVICE, AWS_ERR_SERVICE, 0, 0 };
    for (int i = 0; i < 6; i++) {
        aws_error err;
        memset(&err, 0, sizeof err);
        assert_int_equal(put(f->faulty, keys[i], &err), expected[i]);
        if (expected[i]) {
            assert_int_equal(err.kind, AWS_ERR_SERVICE);
            assert_int_equal(err.http_status, 503);
            assert_string_equal(err.code, "SlowDown");
            assert_string_equal(err.message, "injected fault");
        }
    }
    /* Failed calls never reached the store. */
    objc_memory_counts counts;
    objc_memory_stats(f->inner, &counts);
    assert_int_equal(counts.put, 4);
    assert_int_equal(objc_memory_get_object(f->inner, "k3", NULL, NULL, NULL), -1);
    assert_int_equal(objc_memory_get_object(f->inner, "k5", NULL, NULL, NULL), 0);
    assert_int_equal(objc_faulty_injected(f->faulty), 2);
    assert_int_equal(objc_faulty_calls(f->faulty), 6);
}

static void test_forever_and_clear(void **state)
{
    fixture *f = *state;
    objc_fault_rule rule = { .ops_mask = OBJC_OP_HEAD | OBJC_OP_GET, .after_calls = 0, .fail_count = -1,
                             .kind = AWS_ERR_NETWORK, .code = "" };
    aws_error err;
    assert_int_equal(put(f->faulty, "x", &err), 0);                 /* PUT is not in the mask */
    assert_int_equal(objc_faulty_add_rule(f->faulty, &rule), 0);
    for (int i = 0; i < 50; i++) {
        objc_head h;
        assert_int_equal(f->faulty->ops->head(f->faulty, "x", &h, &err), AWS_ERR_NETWORK);
        assert_int_equal(h.metadata.count, 0);                       /* output left empty, freeable */
        objc_head_free(&h);
        uint8_t buf[4];
        size_t got = 7;
        assert_int_equal(f->faulty->ops->get_range(f->faulty, "x", 0, 4, buf, &got, &err), AWS_ERR_NETWORK);
        assert_int_equal(got, 0);
    }
    objc_faulty_clear_rules(f->faulty);
    objc_head h;
    assert_int_equal(f->faulty->ops->head(f->faulty, "x", &h, &err), 0);
    assert_int_equal(h.size, 1);
    objc_head_free(&h);
}

static void test_key_filter(void **state)
{
    fixture *f = *state;
    objc_fault_rule rule = { .ops_mask = OBJC_OP_ALL, .fail_count = -1, .kind = AWS_ERR_SERVICE, .http_status = 403,
                             .code = "AccessDenied", .key_substring = "secret/" };
    char substring[16];
    strcpy(substring, "secret/");
    rule.key_substring = substring;
    assert_int_equal(objc_faulty_add_rule(f->faulty, &rule), 0);
    memset(substring, 0, sizeof substring);   /* the rule must have kept its own copy */
    aws_error err;
    assert_int_equal(put(f->faulty, "public/a", &err), 0);
    assert_int_equal(put(f->faulty, "top/secret/b", &err), AWS_ERR_SERVICE);
    assert_string_equal(err.code, "AccessDenied");
    assert_int_equal(err.http_status, 403);
    /* Copy matches on either key; DeleteObjects if any key matches. */
    assert_int_equal(f->faulty->ops->copy(f->faulty, "public/a", "secret/a", OBJC_METADATA_COPY, NULL, &err),
                     AWS_ERR_SERVICE);
    assert_int_equal(f->faulty->ops->copy(f->faulty, "public/a", "public/c", OBJC_METADATA_COPY, NULL, &err), 0);
    const char *batch[] = { "public/a", "secret/z" };
    assert_int_equal(f->faulty->ops->delete_objects(f->faulty, batch, 2, &err), AWS_ERR_SERVICE);
    assert_int_equal(objc_memory_get_object(f->inner, "public/a", NULL, NULL, NULL), 0);
    /* Listing matches on the prefix. */
    objc_list_page page;
    assert_int_equal(f->faulty->ops->list_page(f->faulty, "secret/", NULL, NULL, 10, &page, &err), AWS_ERR_SERVICE);
    assert_null(page.objects);
    assert_null(page.next_token);
    assert_int_equal(f->faulty->ops->list_page(f->faulty, "public/", NULL, NULL, 10, &page, &err), 0);
    assert_int_equal(page.object_count, 2);
    objc_list_page_free(&page);
}

static void test_counting_is_per_rule_and_first_failure_wins(void **state)
{
    fixture *f = *state;
    /* Rule A counts only keys with "a"; rule B every PUT. */
    objc_fault_rule a = { .ops_mask = OBJC_OP_PUT, .after_calls = 1, .fail_count = 1, .kind = AWS_ERR_SERVICE,
                          .http_status = 500, .code = "InternalError", .key_substring = "a" };
    objc_fault_rule b = { .ops_mask = OBJC_OP_PUT, .after_calls = 3, .fail_count = 1, .kind = AWS_ERR_TIMEOUT,
                          .code = "" };
    assert_int_equal(objc_faulty_add_rule(f->faulty, &a), 0);
    assert_int_equal(objc_faulty_add_rule(f->faulty, &b), 0);
    aws_error err;
    assert_int_equal(put(f->faulty, "a1", &err), 0);               /* A: 1st, B: 1st */
    assert_int_equal(put(f->faulty, "b1", &err), 0);               /* B: 2nd */
    assert_int_equal(put(f->faulty, "a2", &err), AWS_ERR_SERVICE); /* A: 2nd -> fails; B: 3rd */
    assert_string_equal(err.code, "InternalError");
    assert_int_equal(put(f->faulty, "b2", &err), AWS_ERR_TIMEOUT); /* B: 4th -> fails */
    assert_int_equal(put(f->faulty, "a3", &err), 0);
    assert_int_equal(put(f->faulty, "b3", &err), 0);
}

static void test_remove_rule(void **state)
{
    fixture *f = *state;
    objc_fault_rule rule = { .ops_mask = OBJC_OP_DELETE, .fail_count = -1, .kind = AWS_ERR_SERVICE, .http_status = 500,
                             .code = "InternalError" };
    int first = objc_faulty_add_rule_ex(f->faulty, &rule, 0);
    rule.ops_mask = OBJC_OP_PUT;
    int second = objc_faulty_add_rule_ex(f->faulty, &rule, 0);
    assert_true(first >= 0 && second > first);
    aws_error err;
    assert_int_equal(f->faulty->ops->delete_object(f->faulty, "k", &err), AWS_ERR_SERVICE);
    assert_int_equal(objc_faulty_remove_rule(f->faulty, first), 0);
    assert_int_equal(objc_faulty_remove_rule(f->faulty, first), -1);
    assert_int_equal(f->faulty->ops->delete_object(f->faulty, "k", &err), 0);
    assert_int_equal(put(f->faulty, "k", &err), AWS_ERR_SERVICE);     /* the other rule still applies */
}

static void test_delay(void **state)
{
    fixture *f = *state;
    objc_fault_rule slow = { .ops_mask = OBJC_OP_PUT, .fail_count = 0, .delay_ms = 120 };
    assert_int_equal(objc_faulty_add_rule(f->faulty, &slow), 0);
    aws_error err;
    double start = now_ms();
    assert_int_equal(put(f->faulty, "slow", &err), 0);              /* delayed, not failed */
    double took = now_ms() - start;
    assert_true(took >= 115);
    assert_true(took < 3000);
    start = now_ms();
    objc_head h;
    assert_int_equal(f->faulty->ops->head(f->faulty, "slow", &h, &err), 0);  /* HEAD not delayed */
    objc_head_free(&h);
    assert_true(now_ms() - start < 100);

    objc_fault_rule slow_fail = { .ops_mask = OBJC_OP_HEAD, .fail_count = 1, .kind = AWS_ERR_TIMEOUT, .delay_ms = 80 };
    assert_int_equal(objc_faulty_add_rule(f->faulty, &slow_fail), 0);
    start = now_ms();
    assert_int_equal(f->faulty->ops->head(f->faulty, "slow", &h, &err), AWS_ERR_TIMEOUT);
    objc_head_free(&h);
    assert_true(now_ms() - start >= 75);
}

static void test_after_effect_complete(void **state)
{
    fixture *f = *state;
    objc_memory_set_min_part_size(f->inner, 0);
    objc_fault_rule lost = { .ops_mask = OBJC_OP_MPU_COMPLETE, .fail_count = 1, .kind = AWS_ERR_NETWORK };
    assert_true(objc_faulty_add_rule_ex(f->faulty, &lost, OBJC_FAULT_AFTER_EFFECT) >= 0);
    aws_error err;
    char *id = NULL;
    assert_int_equal(f->faulty->ops->mpu_create(f->faulty, "obj", NULL, &id, &err), 0);
    objc_part part;
    assert_int_equal(f->faulty->ops->mpu_upload_part(f->faulty, "obj", id, 1, (const uint8_t *)"abc", 3, &part, &err), 0);
    /* The completion took effect, but the caller was told it failed... */
    assert_int_equal(f->faulty->ops->mpu_complete(f->faulty, "obj", id, &part, 1, &err), AWS_ERR_NETWORK);
    assert_string_equal(err.message, "injected fault");
    assert_int_equal(objc_memory_get_object(f->inner, "obj", NULL, NULL, NULL), 0);
    /* ...so a retry meets S3's answer for a finished upload. */
    assert_int_equal(f->faulty->ops->mpu_complete(f->faulty, "obj", id, &part, 1, &err), AWS_ERR_NOT_FOUND);
    assert_string_equal(err.code, "NoSuchUpload");
    free(id);

    /* A lost CreateMultipartUpload answer leaves an orphan upload the caller has no id for. */
    objc_fault_rule lost_create = { .ops_mask = OBJC_OP_MPU_CREATE, .fail_count = 1, .kind = AWS_ERR_TIMEOUT };
    assert_true(objc_faulty_add_rule_ex(f->faulty, &lost_create, OBJC_FAULT_AFTER_EFFECT) >= 0);
    id = (char *)"sentinel";
    assert_int_equal(f->faulty->ops->mpu_create(f->faulty, "orphan", NULL, &id, &err), AWS_ERR_TIMEOUT);
    assert_null(id);
    objc_upload *ups;
    size_t n;
    assert_int_equal(f->faulty->ops->mpu_list(f->faulty, "orphan", &ups, &n, &err), 0);
    assert_int_equal(n, 1);
    objc_uploads_free(ups, n);
}

static void test_truncated_gets(void **state)
{
    fixture *f = *state;
    aws_error err;
    uint8_t body[100];
    for (int i = 0; i < 100; i++)
        body[i] = (uint8_t)i;
    assert_int_equal(f->faulty->ops->put(f->faulty, "data/one", NULL, body, sizeof body, &err), 0);
    assert_int_equal(f->faulty->ops->put(f->faulty, "other", NULL, body, sizeof body, &err), 0);

    uint8_t buf[100];
    size_t got = 0;
    assert_int_equal(objc_faulty_set_truncation(f->faulty, "data/", 30, 1), 0);
    /* Cut short as a connection reset: error, but the bytes before it are delivered and counted. */
    assert_int_equal(f->faulty->ops->get_range(f->faulty, "data/one", 10, 50, buf, &got, &err), AWS_ERR_NETWORK);
    assert_int_equal(got, 30);
    assert_memory_equal(buf, body + 10, 30);
    /* A range that fits under the cap is untouched. */
    assert_int_equal(f->faulty->ops->get_range(f->faulty, "data/one", 10, 20, buf, &got, &err), 0);
    assert_int_equal(got, 20);
    /* A body that ends exactly at the cap was not cut: success. */
    assert_int_equal(f->faulty->ops->get_range(f->faulty, "data/one", 70, 50, buf, &got, &err), 0);
    assert_int_equal(got, 30);
    assert_memory_equal(buf, body + 70, 30);
    /* One byte more behind the cap and it was. */
    assert_int_equal(f->faulty->ops->get_range(f->faulty, "data/one", 69, 50, buf, &got, &err), AWS_ERR_NETWORK);
    assert_int_equal(got, 30);
    assert_int_equal(objc_faulty_injected(f->faulty), 2);
    /* Other keys are untouched. */
    assert_int_equal(f->faulty->ops->get_range(f->faulty, "other", 0, 100, buf, &got, &err), 0);
    assert_int_equal(got, 100);

    /* Silent short read: success with fewer bytes than asked, in the middle of the object. */
    assert_int_equal(objc_faulty_set_truncation(f->faulty, NULL, 7, 0), 0);
    assert_int_equal(f->faulty->ops->get_range(f->faulty, "other", 50, 20, buf, &got, &err), 0);
    assert_int_equal(got, 7);
    assert_memory_equal(buf, body + 50, 7);
    assert_int_equal(objc_faulty_set_truncation(f->faulty, NULL, SIZE_MAX, 0), 0);
    assert_int_equal(f->faulty->ops->get_range(f->faulty, "other", 50, 20, buf, &got, &err), 0);
    assert_int_equal(got, 20);
}

static void test_pass_through(void **state)
{
    fixture *f = *state;
    object_client *c = f->faulty;
    objc_memory_set_min_part_size(f->inner, 0);
    aws_error err;
    kv_list meta;
    kv_list_init(&meta);
    kv_list_add(&meta, "Mode", "0600");
    assert_int_equal(c->ops->put(c, "dir/a", &meta, (const uint8_t *)"hello", 5, &err), 0);
    objc_head h;
    assert_int_equal(c->ops->head(c, "dir/a", &h, &err), 0);
    assert_int_equal(h.size, 5);
    assert_string_equal(kv_list_get(&h.metadata, "mode"), "0600");
    objc_head_free(&h);
    assert_int_equal(c->ops->copy(c, "dir/a", "dir/b", OBJC_METADATA_REPLACE, &meta, &err), 0);
    char *id;
    assert_int_equal(c->ops->mpu_create(c, "dir/c", &meta, &id, &err), 0);
    objc_part parts[2];
    assert_int_equal(c->ops->mpu_upload_part(c, "dir/c", id, 1, (const uint8_t *)"ab", 2, &parts[0], &err), 0);
    assert_int_equal(c->ops->mpu_upload_part(c, "dir/c", id, 2, (const uint8_t *)"cd", 2, &parts[1], &err), 0);
    assert_int_equal(c->ops->mpu_complete(c, "dir/c", id, parts, 2, &err), 0);
    free(id);
    assert_int_equal(c->ops->mpu_create(c, "dir/d", NULL, &id, &err), 0);
    assert_int_equal(c->ops->mpu_abort(c, "dir/d", id, &err), 0);
    free(id);
    objc_list_page page;
    assert_int_equal(c->ops->list_page(c, "dir/", "/", NULL, 2, &page, &err), 0);
    assert_int_equal(page.object_count, 2);
    assert_non_null(page.next_token);
    char *token = strdup(page.next_token);
    objc_list_page_free(&page);
    assert_int_equal(c->ops->list_page(c, "dir/", "/", token, 2, &page, &err), 0);
    assert_int_equal(page.object_count, 1);
    assert_string_equal(page.objects[0].key, "dir/c");
    assert_int_equal(page.objects[0].size, 4);
    objc_list_page_free(&page);
    free(token);
    uint8_t buf[8];
    size_t got;
    assert_int_equal(c->ops->get_range(c, "dir/c", 1, 8, buf, &got, &err), 0);
    assert_int_equal(got, 3);
    assert_memory_equal(buf, "bcd", 3);
    /* Errors of the wrapped client come through as they are. */
    assert_int_equal(c->ops->head(c, "dir/none", &h, &err), AWS_ERR_NOT_FOUND);
    assert_string_equal(err.code, "NotFound");
    const char *keys[] = { "dir/a", "dir/b" };
    assert_int_equal(c->ops->delete_objects(c, keys, 2, &err), 0);
    assert_int_equal(c->ops->delete_object(c, "dir/c", &err), 0);
    assert_int_equal(objc_memory_object_count(f->inner), 0);
    assert_int_equal(objc_faulty_injected(c), 0);
    kv_list_free(&meta);
}

typedef struct {
    object_client *c;
    int id;
    atomic_int *stop;
    long ok, failed, wrong;
} caller_arg;

static void *caller(void *arg)
{
    caller_arg *a = arg;
    char key[32];
    for (long i = 0; !atomic_load(a->stop) || i < 200; i++) {
        snprintf(key, sizeof key, "t%d/%ld", a->id, i % 50);
        aws_error err;
        int rc = put(a->c, key, &err);
        if (rc == 0)
            a->ok++;
        else if (rc == AWS_ERR_SERVICE && strcmp(err.code, "SlowDown") == 0 && err.http_status == 503)
            a->failed++;
        else
            a->wrong++;
        if (i > 100000)
            break;
    }
    return NULL;
}

static void test_rules_change_while_calling(void **state)
{
    fixture *f = *state;
    atomic_int stop = 0;
    caller_arg args[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (caller_arg){ .c = f->faulty, .id = i, .stop = &stop };
        assert_int_equal(pthread_create(&t[i], NULL, caller, &args[i]), 0);
    }
    objc_fault_rule rule = { .ops_mask = OBJC_OP_PUT, .after_calls = 0, .fail_count = 3, .kind = AWS_ERR_SERVICE,
                             .http_status = 503, .code = "SlowDown" };
    for (int round = 0; round < 200; round++) {
        assert_int_equal(objc_faulty_add_rule(f->faulty, &rule), 0);
        if (round % 3 == 0)
            objc_faulty_clear_rules(f->faulty);
    }
    atomic_store(&stop, 1);
    long ok = 0, failed = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].wrong, 0);
        ok += args[i].ok;
        failed += args[i].failed;
    }
    /* Every failure was an injected one, and every success reached the store. */
    assert_int_equal((uint64_t)failed, objc_faulty_injected(f->faulty));
    objc_memory_counts counts;
    objc_memory_stats(f->inner, &counts);
    assert_int_equal(counts.put, (uint64_t)ok);
}

/* The outcome (ok or failed) of 2000 HEADs under random faults, as a string of '.' and 'x'. */
static void random_outcomes(uint64_t seed, unsigned per_million, char *out)
{
    object_client *inner = objc_new_memory();
    object_client *f = objc_new_faulty(inner, 1);
    aws_error err;
    assert_int_equal(put(f, "k", &err), 0);
    assert_int_equal(objc_faulty_set_random(f, seed, per_million, OBJC_OP_HEAD, AWS_ERR_SERVICE, 500, "InternalError"), 0);
    for (int i = 0; i < 2000; i++) {
        objc_head h;
        int rc = f->ops->head(f, "k", &h, &err);
        objc_head_free(&h);
        out[i] = rc == 0 ? '.' : 'x';
        if (rc)
            assert_string_equal(err.code, "InternalError");
    }
    out[2000] = '\0';
    /* Operations outside the mask are never failed. */
    for (int i = 0; i < 200; i++)
        assert_int_equal(put(f, "k", &err), 0);
    objc_free(f);
}

static void test_random_faults(void **state)
{
    (void)state;
    char a[2001], b[2001], c[2001];
    random_outcomes(42, 100000, a);            /* 10 % */
    random_outcomes(42, 100000, b);
    random_outcomes(43, 100000, c);
    assert_string_equal(a, b);                 /* reproducible for a seed */
    assert_string_not_equal(a, c);
    size_t failures = 0;
    for (int i = 0; i < 2000; i++)
        failures += a[i] == 'x';
    assert_true(failures > 120 && failures < 280);   /* 200 expected; far outside this is a broken rate */
    random_outcomes(42, 0, a);
    assert_null(strchr(a, 'x'));
    random_outcomes(7, 1000000, a);
    assert_null(strchr(a, '.'));
    object_client *plain = objc_new_memory();
    assert_int_equal(objc_faulty_set_random(plain, 1, 1, OBJC_OP_ALL, AWS_ERR_NETWORK, 0, ""), -1);
    objc_free(plain);
}

static void test_ownership(void **state)
{
    (void)state;
    object_client *inner = objc_new_memory();
    object_client *owned = objc_new_faulty(inner, 1);
    assert_non_null(owned);
    aws_error err;
    assert_int_equal(put(owned, "k", &err), 0);
    objc_free(owned);   /* frees inner too: the leak checker (ASan builds) would report otherwise */
    assert_null(objc_new_faulty(NULL, 0));
    assert_int_equal(objc_faulty_add_rule(NULL, NULL), -1);
    object_client *plain = objc_new_memory();
    objc_fault_rule rule = { .ops_mask = OBJC_OP_ALL };
    assert_int_equal(objc_faulty_add_rule(plain, &rule), -1);        /* not a faulty client */
    objc_free(plain);
}

int main(void)
{
    alarm(120);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_after_n_then_m_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forever_and_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counting_is_per_rule_and_first_failure_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_effect_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_gets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pass_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rules_change_while_calling, setup, teardown),
        cmocka_unit_test(test_random_faults),
        cmocka_unit_test(test_ownership),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
