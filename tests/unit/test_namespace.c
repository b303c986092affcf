/* Namespace operations on the in-memory store: readdir (exact sizes of encrypted objects, one KMS call
 * per distinct data key, none on a repeat, none after the TTL for unchanged objects), mkdir/rmdir
 * (ENOTEMPTY), unlink, rename of files (envelope kept byte-for-byte, instruction file moved along) and
 * directories (more than one listing page), chmod/chown/utimens by self-copy keeping every CSE field,
 * and the user.s3csefs.* extended attributes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <unistd.h>

#include "read_path.h"
#include "test_read_util.h"

static fs_context ctx;

static int setup(void **state) { (void)state; tr_setup(&ctx); return 0; }
static int teardown(void **state) { (void)state; tr_teardown(&ctx); return 0; }

typedef struct {
    size_t count;
    char names[2048][64];
    struct stat st[2048];
    int has_st[2048];
} listing;

static int collect(void *buf, const char *name, const struct stat *st, int plus)
{
    listing *l = buf;
    (void)plus;
    if (l->count >= 2048)
        return 1;
    snprintf(l->names[l->count], 64, "%s", name);
    l->has_st[l->count] = st != NULL;
    if (st)
        l->st[l->count] = *st;
    l->count++;
    return 0;
}

static int find(const listing *l, const char *name)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->names[i], name) == 0)
            return (int)i;
    return -1;
}

static void put_plain(const char *key, const char *body)
{
    kv_list md;
    kv_list_init(&md);
    aws_error err;
    aws_error_clear(&err);
    assert_int_equal(ctx.objects->ops->put(ctx.objects, key, &md, (const uint8_t *)body, strlen(body), &err), 0);
}

static void test_readdir_sizes_and_kms_calls(void **state)
{
    (void)state;
    const int n = 300;
    for (int i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof key, "many/obj%04d.bak", i);
        size_t len = (size_t)(i * 37 % 1000), stored;
        uint8_t *plain = tr_random_bytes(len, (unsigned)i);
        tr_cbc_opts o = { .profile = CSE_PROFILE_KMS, .with_length = i % 2, .share_key_slot = 2 + i % 3 };
        free(tr_put_cbc(&ctx, key, plain, len, &o, &stored));
        free(plain);
    }
    put_plain("many/readme.txt", "hello");
    put_plain("many/sub/x", "1");
    kms_local_counts k0, k1, k2;
    kms_local_stats(ctx.kms, &k0);
    static listing l;
    memset(&l, 0, sizeof l);
    assert_int_equal(ns_readdir(&ctx, "/many", &l, collect, 1), 0);
    assert_int_equal(l.count, (size_t)n + 4);          /* . .. readme.txt sub */
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "obj%04d.bak", i);
        int at = find(&l, name);
        assert_true(at >= 0);
        assert_true(l.has_st[at]);
        assert_int_equal(l.st[at].st_size, i * 37 % 1000);
        assert_true(S_ISREG(l.st[at].st_mode));
    }
    int sub = find(&l, "sub");
    assert_true(sub >= 0 && S_ISDIR(l.st[sub].st_mode));
    assert_int_equal(l.st[find(&l, "readme.txt")].st_size, 5);
    kms_local_stats(ctx.kms, &k1);
    assert_int_equal(k1.decrypt - k0.decrypt, 3);      /* three distinct data keys */

    /* Repeat within the TTL: no S3 HEAD, no KMS. */
    objc_memory_reset_stats(ctx.objects);
    memset(&l, 0, sizeof l);
    assert_int_equal(ns_readdir(&ctx, "/many", &l, collect, 1), 0);
    assert_int_equal(l.count, (size_t)n + 4);
    objc_memory_counts c;
    objc_memory_stats(ctx.objects, &c);
    assert_int_equal(c.head + c.get + c.list, 0);
    struct stat st;
    assert_int_equal(ns_getattr(&ctx, "/many/obj0007.bak", &st), 0);
    assert_int_equal(st.st_size, 7 * 37 % 1000);
    objc_memory_stats(ctx.objects, &c);
    assert_int_equal(c.head, 0);
    kms_local_stats(ctx.kms, &k2);
    assert_int_equal(k2.decrypt, k1.decrypt);
}

static void test_readdir_after_ttl_uses_summaries(void **state)
{
    (void)state;
    fs_context c2;
    tr_setup(&c2);
    meta_cache_free(c2.meta);
    c2.meta = meta_cache_new(1, 10000);
    for (int i = 0; i < 20; i++) {
        char key[32];
        snprintf(key, sizeof key, "t/f%02d.bak", i);
        uint8_t *plain = tr_random_bytes(100 + i, 1);
        size_t stored;
        tr_cbc_opts o = { .profile = CSE_PROFILE_KMS };
        free(tr_put_cbc(&c2, key, plain, 100 + i, &o, &stored));
        free(plain);
    }
    static listing l;
    memset(&l, 0, sizeof l);
    assert_int_equal(ns_readdir(&c2, "/t", &l, collect, 1), 0);
    usleep(1100 * 1000);
    objc_memory_reset_stats(c2.objects);
    kms_local_counts k0, k1;
    kms_local_stats(c2.kms, &k0);
    memset(&l, 0, sizeof l);
    assert_int_equal(ns_readdir(&c2, "/t", &l, collect, 1), 0);
    objc_memory_counts c;
    objc_memory_stats(c2.objects, &c);
    assert_int_equal(c.list, 1);
    assert_int_equal(c.head + c.get, 0);
    kms_local_stats(c2.kms, &k1);
    assert_int_equal(k1.decrypt, k0.decrypt);
    assert_int_equal(l.st[find(&l, "f05.bak")].st_size, 105);
    tr_teardown(&c2);
}

static void test_mkdir_rmdir_unlink(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(ns_getattr(&ctx, "/newdir", &st), -ENOENT);
    assert_int_equal(ns_mkdir(&ctx, "/newdir", 0750, 1234, 5678), 0);
    assert_int_equal(ns_getattr(&ctx, "/newdir", &st), 0);      /* negative entry was invalidated */
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0750);
    kv_list md;
    uint8_t *body;
    size_t len;
    assert_int_equal(objc_memory_get_object(ctx.objects, "newdir/", &body, &len, &md), 0);
    assert_int_equal(len, 0);
    free(body);
    kv_list_free(&md);
    assert_int_equal(ns_mkdir(&ctx, "/newdir", 0750, 0, 0), -EEXIST);
    put_plain("newdir/file", "abc");
    meta_cache_invalidate(ctx.meta, "/newdir/file");
    assert_int_equal(ns_rmdir(&ctx, "/newdir"), -ENOTEMPTY);
    assert_int_equal(ns_unlink(&ctx, "/newdir/file"), 0);
    assert_int_equal(ns_getattr(&ctx, "/newdir/file", &st), -ENOENT);
    assert_int_equal(ns_unlink(&ctx, "/newdir/file"), -ENOENT);
    assert_int_equal(ns_rmdir(&ctx, "/newdir"), 0);
    assert_int_equal(ns_getattr(&ctx, "/newdir", &st), -ENOENT);
    assert_int_equal(objc_memory_get_object(ctx.objects, "newdir/", NULL, NULL, NULL), -1);
}

static void test_rename_file_keeps_envelope(void **state)
{
    (void)state;
    size_t len = 5000, stored;
    uint8_t *plain = tr_random_bytes(len, 77);
    tr_cbc_opts o = { .profile = CSE_PROFILE_KMS };
    free(tr_put_cbc(&ctx, ".db.bak.Ab12Cd", plain, len, &o, &stored));
    kv_list before, after;
    uint8_t *b1, *b2;
    size_t l1, l2;
    objc_memory_get_object(ctx.objects, ".db.bak.Ab12Cd", &b1, &l1, &before);
    assert_int_equal(ns_rename(&ctx, "/.db.bak.Ab12Cd", "/db.bak", 0), 0);
    assert_int_equal(objc_memory_get_object(ctx.objects, ".db.bak.Ab12Cd", NULL, NULL, NULL), -1);
    assert_int_equal(objc_memory_get_object(ctx.objects, "db.bak", &b2, &l2, &after), 0);
    assert_true(kv_list_equal(&before, &after));
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    read_handle *h;
    assert_int_equal(read_handle_open(&ctx, "/db.bak", &h), 0);
    char *buf = malloc(len);
    assert_int_equal(read_handle_read(h, buf, len, 0), (ssize_t)len);
    assert_memory_equal(buf, plain, len);
    read_handle_close(h);

    /* An object whose envelope is an instruction file takes it along. */
    tr_cbc_opts io = { .profile = CSE_PROFILE_KMS, .as_instruction = 1 };
    free(tr_put_cbc(&ctx, "i.bak", plain, len, &io, &stored));
    assert_int_equal(ns_rename(&ctx, "/i.bak", "/j.bak", 0), 0);
    assert_int_equal(objc_memory_get_object(ctx.objects, "i.bak.instruction", NULL, NULL, NULL), -1);
    assert_int_equal(objc_memory_get_object(ctx.objects, "j.bak.instruction", NULL, NULL, NULL), 0);
    assert_int_equal(read_handle_open(&ctx, "/j.bak", &h), 0);
    assert_int_equal(read_handle_read(h, buf, len, 0), (ssize_t)len);
    assert_memory_equal(buf, plain, len);
    read_handle_close(h);

    /* A plain file renamed over one whose envelope was an instruction file: that file goes too, so the
     * moved bytes read as they are. */
    tr_cbc_opts io2 = { .profile = CSE_PROFILE_KMS, .as_instruction = 1 };
    free(tr_put_cbc(&ctx, "old.txt", plain, len, &io2, &stored));
    aws_error perr;
    kv_list nomd;
    kv_list_init(&nomd);
    assert_int_equal(ctx.objects->ops->put(ctx.objects, "new.txt", &nomd, (const uint8_t *)"plain!", 6, &perr), 0);
    assert_int_equal(ns_rename(&ctx, "/new.txt", "/old.txt", 0), 0);
    assert_int_equal(objc_memory_get_object(ctx.objects, "old.txt.instruction", NULL, NULL, NULL), -1);
    assert_int_equal(read_handle_open(&ctx, "/old.txt", &h), 0);
    assert_int_equal(read_handle_read(h, buf, len, 0), 6);
    assert_memory_equal(buf, "plain!", 6);
    read_handle_close(h);

    struct stat st;
    assert_int_equal(ns_rename(&ctx, "/j.bak", "/db.bak", RENAME_NOREPLACE), -EEXIST);
    assert_int_equal(ns_rename(&ctx, "/nothing", "/x", 0), -ENOENT);
    assert_int_equal(ns_getattr(&ctx, "/db.bak", &st), 0);
    assert_int_equal(st.st_size, len);
    free(buf);
    free(b1);
    free(b2);
    kv_list_free(&before);
    kv_list_free(&after);
    free(plain);
}

static void test_rename_directory_all_pages(void **state)
{
    (void)state;
    const int n = 1100;                       /* more than one ListObjectsV2 page */
    for (int i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof key, "src/%s%04d", i % 2 ? "deep/" : "", i);
        put_plain(key, "x");
    }
    assert_int_equal(ns_mkdir(&ctx, "/src/emptysub", 0755, 0, 0), 0);
    assert_int_equal(ns_rename(&ctx, "/src", "/dst", 0), 0);
    struct stat st;
    assert_int_equal(ns_getattr(&ctx, "/src", &st), -ENOENT);
    assert_int_equal(ns_getattr(&ctx, "/dst/deep/0001", &st), 0);
    assert_int_equal(ns_getattr(&ctx, "/dst/1098", &st), 0);
    assert_int_equal(ns_getattr(&ctx, "/dst/emptysub", &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    static listing l;
    memset(&l, 0, sizeof l);
    assert_int_equal(ns_readdir(&ctx, "/dst", &l, collect, 0), 0);
    assert_int_equal(l.count, (size_t)(n / 2 + 4));   /* . .. deep emptysub + the even files */
}

static void test_attrs_self_copy_keeps_cse_fields(void **state)
{
    (void)state;
    size_t len = 1234, stored;
    uint8_t *plain = tr_random_bytes(len, 5);
    tr_cbc_opts o = { .profile = CSE_PROFILE_KMS, .with_length = 1 };
    free(tr_put_cbc(&ctx, "attr.bak", plain, len, &o, &stored));
    kv_list before, after;
    objc_memory_get_object(ctx.objects, "attr.bak", NULL, NULL, &before);
    assert_int_equal(ns_chmod(&ctx, "/attr.bak", S_IFREG | 0604), 0);
    assert_int_equal(ns_chown(&ctx, "/attr.bak", 4321, (gid_t)-1), 0);
    struct timespec tv[2] = { { 0, UTIME_OMIT }, { 1600000000, 987654321 } };
    assert_int_equal(ns_utimens(&ctx, "/attr.bak", tv), 0);
    objc_memory_get_object(ctx.objects, "attr.bak", NULL, NULL, &after);
    for (size_t i = 0; i < before.count; i++)
        assert_string_equal(kv_list_get(&after, before.items[i].name), before.items[i].value);
    assert_string_equal(kv_list_get(&after, "mode"), "33156");   /* 0100604 */
    assert_string_equal(kv_list_get(&after, "uid"), "4321");
    assert_string_equal(kv_list_get(&after, "mtime"), "1600000000");
    assert_string_equal(kv_list_get(&after, "s3csefs-mtime-ns"), "987654321");
    struct stat st;
    assert_int_equal(ns_getattr(&ctx, "/attr.bak", &st), 0);
    assert_int_equal(st.st_mode, S_IFREG | 0604);
    assert_int_equal(st.st_mtim.tv_sec, 1600000000);
    assert_int_equal(st.st_mtim.tv_nsec, 987654321);
    assert_int_equal(st.st_size, len);

    /* Setting what is already stored copies nothing (a whole-object server-side copy for a backup);
     * a real change still copies. */
    objc_memory_reset_stats(ctx.objects);
    assert_int_equal(ns_chmod(&ctx, "/attr.bak", S_IFREG | 0604), 0);
    assert_int_equal(ns_utimens(&ctx, "/attr.bak", tv), 0);
    objc_memory_counts counts;
    objc_memory_stats(ctx.objects, &counts);
    assert_int_equal(counts.copy, 0);
    assert_int_equal(ns_chmod(&ctx, "/attr.bak", S_IFREG | 0600), 0);
    objc_memory_stats(ctx.objects, &counts);
    assert_int_equal(counts.copy, 1);
    assert_int_equal(ns_getattr(&ctx, "/attr.bak", &st), 0);
    assert_int_equal(st.st_mode, S_IFREG | 0600);
    read_handle *h;
    char buf[2000];
    assert_int_equal(read_handle_open(&ctx, "/attr.bak", &h), 0);
    assert_int_equal(read_handle_read(h, buf, sizeof buf, 0), (ssize_t)len);
    assert_memory_equal(buf, plain, len);
    read_handle_close(h);
    kv_list_free(&before);
    kv_list_free(&after);
    free(plain);
}

static void test_xattrs(void **state)
{
    (void)state;
    size_t stored;
    uint8_t *plain = tr_random_bytes(100, 8);
    tr_cbc_opts o = { .profile = CSE_PROFILE_KMS };
    free(tr_put_cbc(&ctx, "x.bak", plain, 100, &o, &stored));
    put_plain("x.txt", "plain!");
    char v[4096];
    int n = ns_getxattr(&ctx, "/x.bak", "user.s3csefs.encrypted", v, sizeof v);
    assert_int_equal(n, 3);
    assert_memory_equal(v, "yes", 3);
    n = ns_getxattr(&ctx, "/x.bak", "user.s3csefs.key_arn", v, sizeof v);
    assert_int_equal(n, (int)strlen(ctx.key_arn));
    assert_memory_equal(v, ctx.key_arn, n);
    n = ns_getxattr(&ctx, "/x.bak", "user.s3csefs.plain_size", v, sizeof v);
    assert_int_equal(n, 3);
    assert_memory_equal(v, "100", 3);
    n = ns_getxattr(&ctx, "/x.bak", "user.s3csefs.stored_size", v, sizeof v);
    assert_memory_equal(v, "112", 3);
    n = ns_getxattr(&ctx, "/x.bak", "user.s3csefs.cek_alg", v, sizeof v);
    assert_memory_equal(v, "AES/CBC/PKCS5Padding", 20);
    n = ns_getxattr(&ctx, "/x.bak", "user.s3csefs.key_version", NULL, 0);
    assert_int_equal(n, 2);
    assert_int_equal(ns_getxattr(&ctx, "/x.bak", "user.s3csefs.key_version", v, 1), -ERANGE);
    assert_int_equal(ns_getxattr(&ctx, "/x.bak", "user.other", v, sizeof v), -ENODATA);
    n = ns_getxattr(&ctx, "/x.txt", "user.s3csefs.encrypted", v, sizeof v);
    assert_memory_equal(v, "no", 2);
    assert_int_equal(ns_getxattr(&ctx, "/x.txt", "user.s3csefs.key_arn", v, sizeof v), -ENODATA);
    n = ns_listxattr(&ctx, "/x.bak", v, sizeof v);
    assert_true(n > 0);
    int names = 0;
    for (int i = 0; i < n; i += (int)strlen(v + i) + 1)
        names++;
    assert_int_equal(names, 7);
    n = ns_getxattr(&ctx, "/", "user.s3csefs.stats", v, sizeof v - 1);
    assert_true(n > 0);
    v[n] = '\0';
    assert_non_null(strstr(v, "kms_decrypt_calls"));
    free(plain);
}

/* Mounted at bucket:/pre: paths map below the prefix, nothing outside it is visible or touched. */
static void test_prefix_mount(void **state)
{
    (void)state;
    fs_context p;
    tr_setup(&p);
    snprintf(p.options.prefix, sizeof p.options.prefix, "pre/");
    kv_list md;
    kv_list_init(&md);
    aws_error err;
    aws_error_clear(&err);
    const char *keys[] = { "pre/a.txt", "pre/sub/b", "other/c", "prefile" };
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(p.objects->ops->put(p.objects, keys[i], &md, (const uint8_t *)"xyz", 3, &err), 0);
    static listing l;
    memset(&l, 0, sizeof l);
    assert_int_equal(ns_readdir(&p, "/", &l, collect, 1), 0);
    assert_int_equal(l.count, 4);                         /* . .. a.txt sub */
    assert_true(find(&l, "a.txt") >= 0 && find(&l, "sub") >= 0);
    struct stat st;
    assert_int_equal(ns_getattr(&p, "/a.txt", &st), 0);
    assert_int_equal(st.st_size, 3);
    assert_int_equal(ns_getattr(&p, "/c", &st), -ENOENT);
    assert_int_equal(ns_mkdir(&p, "/newd", 0755, 0, 0), 0);
    assert_int_equal(objc_memory_get_object(p.objects, "pre/newd/", NULL, NULL, NULL), 0);
    assert_int_equal(ns_rename(&p, "/a.txt", "/b.txt", 0), 0);
    assert_int_equal(objc_memory_get_object(p.objects, "pre/b.txt", NULL, NULL, NULL), 0);
    assert_int_equal(objc_memory_get_object(p.objects, "pre/a.txt", NULL, NULL, NULL), -1);
    assert_int_equal(objc_memory_get_object(p.objects, "other/c", NULL, NULL, NULL), 0);
    tr_teardown(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readdir_sizes_and_kms_calls),
        cmocka_unit_test(test_readdir_after_ttl_uses_summaries),
        cmocka_unit_test(test_mkdir_rmdir_unlink),
        cmocka_unit_test(test_rename_file_keeps_envelope),
        cmocka_unit_test(test_rename_directory_all_pages),
        cmocka_unit_test(test_attrs_self_copy_keeps_cse_fields),
        cmocka_unit_test(test_xattrs),
        cmocka_unit_test(test_prefix_mount),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
