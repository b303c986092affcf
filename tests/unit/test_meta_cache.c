/* meta_cache: TTL of stat/negative/listing entries, no TTL for summaries but ETag/Last-Modified/size
 * validation, invalidation of a path (and its parent's listing) and of a tree, LRU bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include <stdio.h>

#include "meta_cache.h"

static meta_stat file_stat(uint64_t size, const char *etag)
{
    meta_stat st;
    memset(&st, 0, sizeof st);
    st.exists = 1;
    st.size = size;
    st.stored_size = size + 16;
    st.last_modified = 1700000000;
    strcpy(st.etag, etag);
    return st;
}

static void test_ttl(void **state)
{
    (void)state;
    meta_cache *c = meta_cache_new(1, 100);
    meta_stat st = file_stat(5, "\"e1\""), got;
    meta_cache_put(c, "/a/f", &st);
    meta_cache_put_negative(c, "/a/missing");
    meta_dirent ents[2] = { { "f", 0 }, { "sub", 1 } };
    meta_cache_listing_put(c, "/a", ents, 2);
    assert_int_equal(meta_cache_get(c, "/a/f", &got), 1);
    assert_int_equal(got.size, 5);
    assert_int_equal(meta_cache_get(c, "/a/missing", &got), 1);
    assert_int_equal(got.exists, 0);
    meta_dirent *list;
    size_t n;
    assert_int_equal(meta_cache_listing_get(c, "/a", &list, &n), 1);
    assert_int_equal(n, 2);
    assert_string_equal(list[1].name, "sub");
    assert_int_equal(list[1].is_dir, 1);
    meta_dirents_free(list, n);
    usleep(1100 * 1000);
    assert_int_equal(meta_cache_get(c, "/a/f", &got), 0);
    assert_int_equal(meta_cache_get(c, "/a/missing", &got), 0);
    assert_int_equal(meta_cache_listing_get(c, "/a", &list, &n), 0);
    meta_cache_free(c);
}

static void test_ttl_zero_disables(void **state)
{
    (void)state;
    meta_cache *c = meta_cache_new(0, 100);
    meta_stat st = file_stat(5, "x"), got;
    meta_cache_put(c, "/f", &st);
    assert_int_equal(meta_cache_get(c, "/f", &got), 0);
    meta_cache_object_put(c, "/f", &st);        /* summaries work without a TTL */
    assert_int_equal(meta_cache_object_get(c, "/f", "x", st.last_modified, st.stored_size, &got), 1);
    meta_cache_free(c);
}

static void test_summary_validation(void **state)
{
    (void)state;
    meta_cache *c = meta_cache_new(5, 100);
    meta_stat st = file_stat(1000, "\"abc\""), got;
    meta_cache_object_put(c, "/x.bak", &st);
    assert_int_equal(meta_cache_object_get(c, "/x.bak", "\"abc\"", st.last_modified, st.stored_size, &got), 1);
    assert_int_equal(got.size, 1000);
    assert_int_equal(meta_cache_object_get(c, "/x.bak", "\"abd\"", st.last_modified, st.stored_size, &got), 0);
    assert_int_equal(meta_cache_object_get(c, "/x.bak", "\"abc\"", st.last_modified + 1, st.stored_size, &got), 0);
    assert_int_equal(meta_cache_object_get(c, "/x.bak", "\"abc\"", st.last_modified, st.stored_size + 16, &got), 0);
    meta_cache_free(c);
}

static void test_invalidation(void **state)
{
    (void)state;
    meta_cache *c = meta_cache_new(60, 100);
    meta_stat st = file_stat(1, "e"), got;
    meta_dirent ents[1] = { { "f", 0 } };
    meta_cache_put(c, "/d/f", &st);
    meta_cache_object_put(c, "/d/f", &st);
    meta_cache_put(c, "/d/g", &st);
    meta_cache_listing_put(c, "/d", ents, 1);
    meta_cache_listing_put(c, "/", ents, 1);
    meta_cache_invalidate(c, "/d/f");
    meta_dirent *list;
    size_t n;
    assert_int_equal(meta_cache_get(c, "/d/f", &got), 0);
    assert_int_equal(meta_cache_object_get(c, "/d/f", "e", st.last_modified, st.stored_size, &got), 0);
    assert_int_equal(meta_cache_listing_get(c, "/d", &list, &n), 0);      /* the parent's listing */
    assert_int_equal(meta_cache_get(c, "/d/g", &got), 1);                 /* the sibling stays */
    assert_int_equal(meta_cache_listing_get(c, "/", &list, &n), 1);       /* the grandparent stays */
    meta_dirents_free(list, n);

    meta_cache_put(c, "/d", &st);
    meta_cache_put(c, "/d/sub/x", &st);
    meta_cache_put(c, "/dd", &st);
    meta_cache_invalidate_tree(c, "/d");
    assert_int_equal(meta_cache_get(c, "/d", &got), 0);
    assert_int_equal(meta_cache_get(c, "/d/g", &got), 0);
    assert_int_equal(meta_cache_get(c, "/d/sub/x", &got), 0);
    assert_int_equal(meta_cache_get(c, "/dd", &got), 1);                  /* a prefix, not a child */
    assert_int_equal(meta_cache_listing_get(c, "/", &list, &n), 0);
    meta_cache_free(c);
}

static void test_bounded(void **state)
{
    (void)state;
    meta_cache *c = meta_cache_new(60, 50);
    meta_stat st = file_stat(1, "e"), got;
    char path[32];
    for (int i = 0; i < 500; i++) {
        snprintf(path, sizeof path, "/f%d", i);
        meta_cache_put(c, path, &st);
    }
    int present = 0;
    for (int i = 0; i < 500; i++) {
        snprintf(path, sizeof path, "/f%d", i);
        present += meta_cache_get(c, path, &got);
    }
    assert_int_equal(present, 50);
    assert_int_equal(meta_cache_get(c, "/f499", &got), 1);                /* newest kept */
    meta_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_ttl_zero_disables),
        cmocka_unit_test(test_summary_validation),
        cmocka_unit_test(test_invalidation),
        cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
