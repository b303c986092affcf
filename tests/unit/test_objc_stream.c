/* get_stream on the test doubles: the in-memory store hands a range out in order, each byte once,
 * clipped at the end of the object; a sink that stops ends the call with OBJC_STREAM_STOPPED (not an
 * error); If-Match on another ETag is AWS_ERR_CHANGED before any byte; the fault injector applies its
 * OBJC_OP_GET rules to streams and cuts a stream after N bytes (as a reset or as a silent short end);
 * the null store has nothing to stream. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "object_client.h"
#include "objc_faulty.h"
#include "objc_memory.h"
#include "objc_null.h"

#define OBJECT_LEN ((size_t)300 * 1024 + 7)

/* What a sink received: every byte in order, how many calls, and when to stop. */
typedef struct {
    uint8_t *bytes;
    size_t len, cap;
    int calls;
    size_t stop_after;           /* stop once this many bytes arrived (0: never) */
} collected;

static int collect(void *ctx, const uint8_t *data, size_t n)
{
    collected *c = ctx;
    assert_true(n > 0);
    assert_true(c->len + n <= c->cap);
    memcpy(c->bytes + c->len, data, n);
    c->len += n;
    c->calls++;
    return c->stop_after && c->len >= c->stop_after;
}

static collected collector(size_t cap)
{
    collected c = { .bytes = malloc(cap ? cap : 1), .cap = cap };
    return c;
}

static uint8_t *pattern(size_t len)
{
    uint8_t *p = malloc(len);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 31 + i / 251);
    return p;
}

typedef struct {
    object_client *mem;
    uint8_t *body;
    char etag[80];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->mem = objc_new_memory();
    f->body = pattern(OBJECT_LEN);
    aws_error err;
    objc_head head;
    if (!f->mem || f->mem->ops->put(f->mem, "dir/obj", NULL, f->body, OBJECT_LEN, &err) != 0 ||
        f->mem->ops->head(f->mem, "dir/obj", &head, &err) != 0)
        return -1;
    snprintf(f->etag, sizeof f->etag, "%s", head.etag);
    objc_head_free(&head);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    objc_free(f->mem);
    free(f->body);
    free(f);
    return 0;
}

static void test_memory_ranges_in_order(void **state)
{
    fixture *f = *state;
    const struct { uint64_t offset, len; size_t want; } cases[] = {
        { 0, OBJECT_LEN, OBJECT_LEN },
        { 0, UINT64_MAX, OBJECT_LEN },                 /* clipped at the end */
        { 12345, 100000, 100000 },
        { OBJECT_LEN - 10, 1000, 10 },
        { OBJECT_LEN, 10, 0 },                         /* at the end: nothing, success */
        { OBJECT_LEN + 100, 10, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        collected c = collector(OBJECT_LEN);
        aws_error err;
        int rc = f->mem->ops->get_stream(f->mem, "dir/obj", f->etag, cases[i].offset, cases[i].len, collect, &c,
                                         &err);
        assert_int_equal(rc, 0);
        assert_int_equal(c.len, cases[i].want);
        if (c.len)
            assert_memory_equal(c.bytes, f->body + cases[i].offset, c.len);
        free(c.bytes);
    }
    /* Without If-Match as well; and in more than one piece (the sink must be able to stop between). */
    collected c = collector(OBJECT_LEN);
    aws_error err;
    assert_int_equal(f->mem->ops->get_stream(f->mem, "dir/obj", NULL, 0, OBJECT_LEN, collect, &c, &err), 0);
    assert_int_equal(c.len, OBJECT_LEN);
    assert_true(c.calls > 1);
    free(c.bytes);
}

static void test_memory_stop_is_not_an_error(void **state)
{
    fixture *f = *state;
    objc_memory_reset_stats(f->mem);
    collected c = collector(OBJECT_LEN);
    c.stop_after = 1;
    aws_error err;
    int rc = f->mem->ops->get_stream(f->mem, "dir/obj", f->etag, 1000, OBJECT_LEN, collect, &c, &err);
    assert_int_equal(rc, OBJC_STREAM_STOPPED);
    assert_int_equal(err.kind, AWS_OK);
    assert_int_equal(c.calls, 1);                      /* nothing after the stop */
    assert_memory_equal(c.bytes, f->body + 1000, c.len);
    objc_memory_counts counts;
    objc_memory_stats(f->mem, &counts);
    assert_int_equal(counts.get, 1);
    assert_int_equal(counts.failed, 0);
    assert_int_equal(counts.bytes_got, c.len);         /* only what was handed out */
    free(c.bytes);
}

static void test_memory_preconditions(void **state)
{
    fixture *f = *state;
    collected c = collector(OBJECT_LEN);
    aws_error err;
    int rc = f->mem->ops->get_stream(f->mem, "dir/obj", "\"0123456789abcdef0123456789abcdef\"", 0, 10, collect,
                                     &c, &err);
    assert_int_equal(rc, AWS_ERR_CHANGED);
    assert_int_equal(err.http_status, 412);
    assert_int_equal(c.calls, 0);
    /* Checked before the range, like S3: also past the end. */
    rc = f->mem->ops->get_stream(f->mem, "dir/obj", "\"0123456789abcdef0123456789abcdef\"", OBJECT_LEN + 5, 10,
                                 collect, &c, &err);
    assert_int_equal(rc, AWS_ERR_CHANGED);
    rc = f->mem->ops->get_stream(f->mem, "dir/missing", NULL, 0, 10, collect, &c, &err);
    assert_int_equal(rc, AWS_ERR_NOT_FOUND);
    assert_string_equal(err.code, "NoSuchKey");
    rc = f->mem->ops->get_stream(f->mem, "dir/obj", "", 0, 10, collect, &c, &err);
    assert_int_equal(rc, AWS_ERR_ARGUMENT);
    assert_int_equal(c.calls, 0);
    free(c.bytes);
}

/* A stream in progress keeps the version it started on, as an S3 GET does; the next one sees 412. */
static void test_memory_replaced_during_stream(void **state)
{
    fixture *f = *state;
    object_client *mem = objc_new_memory();
    aws_error err;
    objc_head head;
    assert_int_equal(mem->ops->put(mem, "k", NULL, f->body, OBJECT_LEN, &err), 0);
    assert_int_equal(mem->ops->head(mem, "k", &head, &err), 0);
    collected c = collector(OBJECT_LEN);
    c.stop_after = 1;
    assert_int_equal(mem->ops->get_stream(mem, "k", head.etag, 0, OBJECT_LEN, collect, &c, &err),
                     OBJC_STREAM_STOPPED);
    assert_int_equal(mem->ops->put(mem, "k", NULL, (const uint8_t *)"new", 3, &err), 0);
    c.len = 0;
    c.calls = 0;
    assert_int_equal(mem->ops->get_stream(mem, "k", head.etag, c.len, OBJECT_LEN, collect, &c, &err),
                     AWS_ERR_CHANGED);
    assert_int_equal(c.calls, 0);
    objc_head_free(&head);
    free(c.bytes);
    objc_free(mem);
}

static void test_faulty_rules_apply_to_streams(void **state)
{
    fixture *f = *state;
    object_client *faulty = objc_new_faulty(f->mem, 0);
    objc_fault_rule rule = { .ops_mask = OBJC_OP_GET, .after_calls = 1, .fail_count = 1,
                             .kind = AWS_ERR_SERVICE, .http_status = 503, .code = "SlowDown" };
    assert_int_equal(objc_faulty_add_rule(faulty, &rule), 0);
    objc_memory_reset_stats(f->mem);
    aws_error err;
    for (int call = 0; call < 3; call++) {
        collected c = collector(OBJECT_LEN);
        int rc = faulty->ops->get_stream(faulty, "dir/obj", f->etag, 0, OBJECT_LEN, collect, &c, &err);
        if (call == 1) {
            assert_int_equal(rc, AWS_ERR_SERVICE);
            assert_string_equal(err.code, "SlowDown");
            assert_int_equal(c.calls, 0);              /* failed before reaching the store */
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(c.len, OBJECT_LEN);
            assert_memory_equal(c.bytes, f->body, OBJECT_LEN);
        }
        free(c.bytes);
    }
    objc_memory_counts counts;
    objc_memory_stats(f->mem, &counts);
    assert_int_equal(counts.get, 2);
    objc_free(faulty);
}

/* Cut after N bytes: exactly N reach the sink, then a reset (as_error) or a silent short success. */
static void test_faulty_cuts_stream_mid_body(void **state)
{
    fixture *f = *state;
    object_client *faulty = objc_new_faulty(f->mem, 0);
    const size_t cut = 100000 + 3;
    for (int as_error = 0; as_error <= 1; as_error++) {
        assert_int_equal(objc_faulty_set_truncation(faulty, "obj", cut, as_error), 0);
        uint64_t injected = objc_faulty_injected(faulty);
        collected c = collector(OBJECT_LEN);
        aws_error err;
        int rc = faulty->ops->get_stream(faulty, "dir/obj", f->etag, 7, OBJECT_LEN, collect, &c, &err);
        assert_int_equal(rc, as_error ? AWS_ERR_NETWORK : 0);
        assert_int_equal(c.len, cut);
        assert_memory_equal(c.bytes, f->body + 7, cut);
        assert_int_equal(objc_faulty_injected(faulty), injected + (uint64_t)as_error);
        /* A range no longer than the cap is not affected. */
        c.len = 0;
        assert_int_equal(faulty->ops->get_stream(faulty, "dir/obj", f->etag, 0, cut, collect, &c, &err), 0);
        assert_int_equal(c.len, cut);
        /* The caller's own stop still reads as a stop, not as the cut. */
        c.len = 0;
        c.stop_after = 10;
        assert_int_equal(faulty->ops->get_stream(faulty, "dir/obj", f->etag, 0, OBJECT_LEN, collect, &c, &err),
                         OBJC_STREAM_STOPPED);
        free(c.bytes);
    }
    objc_faulty_clear_rules(faulty);
    collected c = collector(OBJECT_LEN);
    aws_error err;
    assert_int_equal(faulty->ops->get_stream(faulty, "dir/obj", f->etag, 0, OBJECT_LEN, collect, &c, &err), 0);
    assert_int_equal(c.len, OBJECT_LEN);
    free(c.bytes);
    objc_free(faulty);
}

static void test_null_has_nothing(void **state)
{
    (void)state;
    object_client *null = objc_new_null();
    collected c = collector(16);
    aws_error err;
    assert_int_equal(null->ops->get_stream(null, "k", NULL, 0, 16, collect, &c, &err), AWS_ERR_NOT_FOUND);
    assert_int_equal(c.calls, 0);
    free(c.bytes);
    objc_free(null);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_memory_ranges_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_stop_is_not_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_preconditions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_replaced_during_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faulty_rules_apply_to_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faulty_cuts_stream_mid_body, setup, teardown),
        cmocka_unit_test(test_null_has_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
