/* attrs: metadata <-> POSIX attributes in s3fs-fuse's names and formats; round trip with nanoseconds,
 * s3fs "sec.frac" mtimes, malformed values ignored, unrelated (CSE) metadata left untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "attrs.h"

static void test_round_trip(void **state)
{
    (void)state;
    kv_list md;
    kv_list_init(&md);
    kv_list_add(&md, "x-amz-key-v2", "AAAA");
    kv_list_add(&md, "mode", "33188");          /* stale value, replaced below */
    file_attrs a = { 1, 1, 1, 1, S_IFREG | 0640, 1001, 1002, { 1700000000, 123456789 } };
    assert_int_equal(attrs_to_metadata(&a, &md), 0);
    assert_string_equal(kv_list_get(&md, "mode"), "33184");          /* 0100640 */
    assert_string_equal(kv_list_get(&md, "uid"), "1001");
    assert_string_equal(kv_list_get(&md, "gid"), "1002");
    assert_string_equal(kv_list_get(&md, "mtime"), "1700000000");
    assert_string_equal(kv_list_get(&md, "s3csefs-mtime-ns"), "123456789");
    assert_string_equal(kv_list_get(&md, "x-amz-key-v2"), "AAAA");
    assert_int_equal(md.count, 6);
    file_attrs b;
    attrs_from_metadata(&md, &b);
    assert_true(b.has_mode && b.has_uid && b.has_gid && b.has_mtime);
    assert_int_equal(b.mode, a.mode);
    assert_int_equal(b.uid, 1001);
    assert_int_equal(b.gid, 1002);
    assert_int_equal(b.mtime.tv_sec, 1700000000);
    assert_int_equal(b.mtime.tv_nsec, 123456789);
    kv_list_free(&md);
}

static void test_partial_and_malformed(void **state)
{
    (void)state;
    kv_list md;
    kv_list_init(&md);
    kv_list_add(&md, "mode", "12ab");
    kv_list_add(&md, "uid", "-1");
    kv_list_add(&md, "gid", "");
    kv_list_add(&md, "mtime", "1600000000.5");   /* s3fs-fuse writes fractions in some versions */
    file_attrs a;
    attrs_from_metadata(&md, &a);
    assert_false(a.has_mode);
    assert_false(a.has_uid);
    assert_false(a.has_gid);
    assert_true(a.has_mtime);
    assert_int_equal(a.mtime.tv_sec, 1600000000);
    assert_int_equal(a.mtime.tv_nsec, 500000000);
    kv_list_set(&md, "mtime", "x1");
    attrs_from_metadata(&md, &a);
    assert_false(a.has_mtime);
    /* Only the attributes that are present are written. */
    kv_list out;
    kv_list_init(&out);
    file_attrs only_uid = { 0, 1, 0, 0, 0, 7, 0, { 0, 0 } };
    assert_int_equal(attrs_to_metadata(&only_uid, &out), 0);
    assert_int_equal(out.count, 1);
    assert_string_equal(kv_list_get(&out, "uid"), "7");
    kv_list_free(&out);
    kv_list_free(&md);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_partial_and_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
