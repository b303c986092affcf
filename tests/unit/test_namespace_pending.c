/* Attributes set on a file that is open for writing (rsync's fchmod/utimes of its temporary file):
 * kept pending and shown by getattr at once, applied to the object after its upload, carried to the new
 * name by a rename. Uses the real open-file table and write state on the in-memory store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>

#include "open_files.h"
#include "part_uploader.h"
#include "test_read_util.h"
#include "write_file.h"

static fs_context ctx;
static part_uploader *uploader;

static int setup(void **state)
{
    (void)state;
    tr_setup(&ctx);
    ctx.open_files = open_files_new();
    uploader = part_uploader_new(ctx.objects, &ctx.counters, 2);
    return ctx.open_files && uploader ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    fs_caches_destroy(&ctx);               /* stops the ticker before the table goes */
    open_files_free(ctx.open_files);
    part_uploader_free(uploader);
    tr_teardown(&ctx);
    return 0;
}

static write_file *make_empty(fs_context *c, const char *path, void *arg, int *err)
{
    (void)arg;
    write_file *wf = NULL;
    *err = write_file_new_empty(c, uploader, path, S_IFREG | 0600, &wf);
    return *err == 0 ? wf : NULL;
}

/* What the daemon's release does once the file is finished: the last handle leaves the table. */
static void close_last(open_file *of)
{
    if (open_files_release(ctx.open_files, of) == 1) {
        open_files_remove(ctx.open_files, of);
        write_file_free(of->file);
        open_file_destroy(of);
    }
}

static void test_pending_attrs_follow_upload_and_rename(void **state)
{
    (void)state;
    open_file *of = NULL;
    assert_int_equal(open_files_acquire(ctx.open_files, "/.x.txt.AbCdEf", make_empty, &ctx, NULL, &of), 0);
    assert_int_equal(write_file_write(of->file, "hello", 5, 0), 5);
    assert_int_equal(ns_chmod(&ctx, "/.x.txt.AbCdEf", 0640), 0);
    struct timespec tv[2] = { { 0, UTIME_OMIT }, { 1500000000, 42 } };
    assert_int_equal(ns_utimens(&ctx, "/.x.txt.AbCdEf", tv), 0);
    struct stat st;
    assert_int_equal(ns_getattr(&ctx, "/.x.txt.AbCdEf", &st), 0);        /* shown while open */
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(st.st_mtim.tv_sec, 1500000000);
    assert_int_equal(st.st_size, 5);

    assert_int_equal(write_file_finish(of->file), 0);
    close_last(of);
    /* Not applied yet or already applied by the ticker; the rename must carry them either way. */
    assert_int_equal(ns_rename(&ctx, "/.x.txt.AbCdEf", "/x.txt", 0), 0);
    kv_list md;
    uint8_t *body;
    size_t len;
    assert_int_equal(objc_memory_get_object(ctx.objects, "x.txt", &body, &len, &md), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(body, "hello", 5);
    assert_string_equal(kv_list_get(&md, "mode"), "33184");            /* 0100640 */
    assert_string_equal(kv_list_get(&md, "mtime"), "1500000000");
    assert_string_equal(kv_list_get(&md, "s3csefs-mtime-ns"), "42");
    free(body);
    kv_list_free(&md);
    assert_int_equal(ns_getattr(&ctx, "/x.txt", &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(st.st_mtim.tv_nsec, 42);
}

static void test_pending_attrs_applied_after_close(void **state)
{
    (void)state;
    open_file *of = NULL;
    assert_int_equal(open_files_acquire(ctx.open_files, "/y.txt", make_empty, &ctx, NULL, &of), 0);
    assert_int_equal(write_file_write(of->file, "abc", 3, 0), 3);
    assert_int_equal(ns_chown(&ctx, "/y.txt", 777, 888), 0);
    assert_int_equal(write_file_finish(of->file), 0);
    close_last(of);
    ns_apply_pending_attrs(&ctx);            /* what the ticker does every 100 ms */
    kv_list md;
    assert_int_equal(objc_memory_get_object(ctx.objects, "y.txt", NULL, NULL, &md), 0);
    assert_string_equal(kv_list_get(&md, "uid"), "777");
    assert_string_equal(kv_list_get(&md, "gid"), "888");
    kv_list_free(&md);
}

static int collect(void *buf, const char *name, const struct stat *st, int plus)
{
    (void)plus;
    if (strcmp(name, "z.txt") == 0 && st)
        *(off_t *)buf = st->st_size;
    return 0;
}

/* A file created through the mount and still being written has no object yet, but ls shows it. */
static void test_readdir_shows_files_being_written(void **state)
{
    (void)state;
    open_file *of = NULL;
    assert_int_equal(open_files_acquire(ctx.open_files, "/z.txt", make_empty, &ctx, NULL, &of), 0);
    assert_int_equal(write_file_write(of->file, "1234567", 7, 0), 7);
    struct stat st;
    assert_int_equal(ns_getattr(&ctx, "/z.txt", &st), 0);  /* the kernel stats every file it creates */
    off_t size = -1;
    assert_int_equal(ns_readdir(&ctx, "/", &size, collect, 1), 0);
    assert_int_equal(size, 7);
    assert_int_equal(write_file_finish(of->file), 0);
    close_last(of);
    size = -1;
    meta_cache_invalidate(ctx.meta, "/z.txt");   /* upload completed */
    assert_int_equal(ns_readdir(&ctx, "/", &size, collect, 1), 0);
    assert_int_equal(size, 7);                   /* now from the object */
}

/* Review finding 7: unlink of a file still open for writing (the daemon sets hard_remove, so the kernel
 * sends the unlink at once). Its last close must not upload it again: the object stays gone. */
static void test_unlink_while_open_for_writing_stays_deleted(void **state)
{
    (void)state;
    open_file *of = NULL;
    assert_int_equal(open_files_acquire(ctx.open_files, "/gone.txt", make_empty, &ctx, NULL, &of), 0);
    assert_int_equal(write_file_write(of->file, "partial", 7, 0), 7);
    assert_int_equal(ns_unlink(&ctx, "/gone.txt"), 0);
    assert_int_equal(write_file_write(of->file, "more", 4, 7), 4);      /* the handle stays usable */
    write_file_finish(of->file);
    close_last(of);
    objc_head head;
    kv_list_init(&head.metadata);
    aws_error err;
    aws_error_clear(&err);
    assert_int_not_equal(ctx.objects->ops->head(ctx.objects, "gone.txt", &head, &err), 0);
    assert_int_equal(err.kind, AWS_ERR_NOT_FOUND);
    objc_head_free(&head);
    struct stat st;
    assert_int_equal(ns_getattr(&ctx, "/gone.txt", &st), -ENOENT);
}

/* unlink of an object whose envelope is in <key>.instruction removes that too, so a later plain file of
 * the same name is not read through a stale envelope. */
static void test_unlink_removes_instruction_file(void **state)
{
    (void)state;
    uint8_t *plain = tr_random_bytes(100, 9);
    size_t stored;
    tr_cbc_opts o = { .profile = CSE_PROFILE_KMS, .as_instruction = 1 };
    free(tr_put_cbc(&ctx, "instr.bak", plain, 100, &o, &stored));
    assert_int_equal(ns_unlink(&ctx, "/instr.bak"), 0);
    objc_head head;
    kv_list_init(&head.metadata);
    aws_error err;
    aws_error_clear(&err);
    assert_int_not_equal(ctx.objects->ops->head(ctx.objects, "instr.bak.instruction", &head, &err), 0);
    assert_int_equal(err.kind, AWS_ERR_NOT_FOUND);
    objc_head_free(&head);
    free(plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_attrs_follow_upload_and_rename),
        cmocka_unit_test(test_pending_attrs_applied_after_close),
        cmocka_unit_test(test_readdir_shows_files_being_written),
        cmocka_unit_test(test_unlink_while_open_for_writing_stays_deleted),
        cmocka_unit_test(test_unlink_removes_instruction_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
