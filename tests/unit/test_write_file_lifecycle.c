/* Lifecycle of a write state and its open-file entry, without a mount: failures stay failed, fallocate
 * never shrinks, emptying keeps attributes, unmount aborts files still being written, the entry stays
 * visible while its last release uploads, created files report their mode, unlinked files are
 * discarded. Objects are read back from the in-memory store and decrypted with the crypto primitives
 * and local KMS, independently of the write path. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <pthread.h>
#include <unistd.h>

#include "cbc_random.h"
#include "envelope.h"
#include "fs_context.h"
#include "kms_local.h"
#include "objc_memory.h"
#include "open_files.h"
#include "part_uploader.h"
#include "write_file.h"

#define MIB (1024 * 1024)

#include "write_fixture.h"

static void fixture_init(fixture *f)
{
    fixture_config cfg = { .part_size = 5 * MIB, .max_memory = 64 * MIB, .reorder_window = 4 * MIB,
                           .upload_workers = 2 };
    fixture_setup(f, &cfg);
}

/* The stored object's plaintext (decrypted with crypto/ and KMS directly) and its metadata. */
static uint8_t *read_object(fixture *f, const char *key, size_t *plain_len, kv_list *md_out)
{
    int encrypted = 0;
    uint8_t *plain = decrypt_object(f, key, plain_len, md_out, &encrypted);
    assert_true(encrypted);
    return plain;
}

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

static void store_file(fixture *f, const char *path, const uint8_t *data, size_t len, mode_t mode)
{
    write_file *wf = NULL;
    assert_int_equal(write_file_new_created(&f->ctx, f->uploader, path, mode, 1234, 5678, &wf), 0);
    if (len)
        assert_int_equal(write_file_write(wf, (const char *)data, len, 0), (ssize_t)len);
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
}

/* Review item 2: after a failed upload, later writes through the same state must not produce an object
 * with zeros (or the old object) where the lost bytes were. */
static void test_failed_finish_stays_failed(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    object_client *faulty = objc_new_faulty(f.memory, 0);
    objc_fault_rule rule = { .ops_mask = OBJC_OP_PUT, .after_calls = 0, .fail_count = 1,
                             .kind = AWS_ERR_NETWORK, .code = "" };
    assert_int_equal(objc_faulty_add_rule(faulty, &rule), 0);
    f.ctx.objects = faulty;
    uint8_t a[1000], b[1000];
    memset(a, 'A', sizeof a);
    memset(b, 'B', sizeof b);
    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/lost.bak", 0100644, &wf), 0);
    assert_int_equal(write_file_write(wf, (const char *)a, sizeof a, 0), (ssize_t)sizeof a);
    assert_int_equal(write_file_finish(wf), -EIO);
    assert_true(write_file_has_changes(wf));
    assert_int_equal(write_file_write(wf, (const char *)b, sizeof b, 1000), -EIO);
    assert_int_equal(write_file_truncate(wf, 10), -EIO);
    assert_int_equal(write_file_fsync(wf), -EIO);
    assert_int_equal(write_file_finish(wf), -EIO);
    write_file_free(wf);
    assert_int_equal(objc_memory_object_count(f.memory), 0);
    fixture_free(&f);
}

/* Review item 1: fallocate (write_file_grow) of a range inside an unchanged file changes nothing; past
 * its end it extends with zeros. */
static void test_grow_never_shrinks(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    size_t len = 100000;
    uint8_t *data = malloc(len);
    fill(data, len, 7);
    store_file(&f, "/fa.bak", data, len, 0100644);

    write_file *wf = NULL;
    assert_int_equal(write_file_new_existing(&f.ctx, f.uploader, "/fa.bak", &wf), 0);
    assert_int_equal(write_file_grow(wf, 100), 0);
    assert_false(write_file_has_changes(wf));
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    size_t got_len = 0;
    uint8_t *got = read_object(&f, "fa.bak", &got_len, NULL);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, data, len);
    free(got);

    assert_int_equal(write_file_new_existing(&f.ctx, f.uploader, "/fa.bak", &wf), 0);
    assert_int_equal(write_file_grow(wf, len + 5000), 0);
    assert_int_equal(write_file_grow(wf, 10), 0);           /* changed file: its logical size counts */
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    got = read_object(&f, "fa.bak", &got_len, NULL);
    assert_int_equal(got_len, len + 5000);
    assert_memory_equal(got, data, len);
    for (size_t i = len; i < len + 5000; i++)
        assert_int_equal(got[i], 0);
    free(got);
    free(data);
    fixture_free(&f);
}

/* Review item 11: truncating an existing file to 0 keeps its stored mode and owner. */
static void test_truncate_to_zero_keeps_attributes(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    store_file(&f, "/keep.bak", (const uint8_t *)"hello", 5, 0100600);
    write_file *wf = NULL;
    assert_int_equal(write_file_new_existing(&f.ctx, f.uploader, "/keep.bak", &wf), 0);
    assert_int_equal(write_file_truncate(wf, 0), 0);
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    size_t got_len = 99;
    kv_list md;
    uint8_t *got = read_object(&f, "keep.bak", &got_len, &md);
    assert_int_equal(got_len, 0);
    assert_non_null(kv_list_get(&md, "mode"));
    assert_string_equal(kv_list_get(&md, "mode"), "33152");   /* 0100600 */
    assert_string_equal(kv_list_get(&md, "uid"), "1234");
    assert_string_equal(kv_list_get(&md, "gid"), "5678");
    kv_list_free(&md);
    free(got);
    fixture_free(&f);
}

typedef struct {
    fixture *f;
    mode_t mode;
} make_arg;

static write_file *make_new(fs_context *ctx, const char *path, void *arg, int *err)
{
    make_arg *a = arg;
    write_file *wf = NULL;
    *err = write_file_new_created(ctx, a->f->uploader, path, a->mode, 42, 43, &wf);
    return wf;
}

/* Review item 3: at unmount, a file still open for writing is aborted; one whose writers all closed
 * (kept open by a reader) is completed. */
static void test_unmount_aborts_open_writers(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    open_file_table *t = open_files_new();
    make_arg arg = { &f, 0100644 };
    open_file *writing = NULL, *closed = NULL;
    assert_int_equal(open_files_acquire(t, "/half.bak", make_new, &f.ctx, &arg, &writing), 0);
    assert_int_equal(open_files_add_writer(t, writing, 1), 1);
    assert_int_equal(write_file_write(writing->file, "partial", 7, 0), 7);
    assert_int_equal(open_files_acquire(t, "/done.bak", make_new, &f.ctx, &arg, &closed), 0);
    assert_int_equal(write_file_write(closed->file, "complete", 8, 0), 8);
    open_files_free(t);
    uint8_t *body = NULL;
    size_t len = 0;
    kv_list md;
    assert_int_not_equal(objc_memory_get_object(f.memory, "half.bak", &body, &len, &md), 0);
    size_t got_len = 0;
    uint8_t *got = read_object(&f, "done.bak", &got_len, NULL);
    assert_int_equal(got_len, 8);
    assert_memory_equal(got, "complete", 8);
    free(got);
    fixture_free(&f);
}

/* W3: after the last release the entry stays in the table (stat sees the file) until removed, and W4:
 * a created file reports the mode and owner given at create. */
static void test_entry_visible_until_removed(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    open_file_table *t = open_files_new();
    make_arg arg = { &f, 0100600 };
    open_file *of = NULL;
    assert_int_equal(open_files_acquire(t, "/e.bak", make_new, &f.ctx, &arg, &of), 0);
    file_attrs attrs;
    memset(&attrs, 0, sizeof attrs);
    assert_int_equal(open_files_attrs(t, "/e.bak", &attrs), 1);
    assert_true(attrs.has_mode && attrs.has_uid && attrs.has_gid);
    assert_int_equal(attrs.mode, 0100600);
    assert_int_equal(attrs.uid, 42);
    assert_int_equal(attrs.gid, 43);
    /* Only created: no upload at a flush (dd dup2()s and closes the first fd before writing). */
    assert_false(write_file_has_changes(of->file));
    uint64_t size = 99;
    assert_int_equal(open_files_stat(t, "/e.bak", &size, NULL), 1);
    assert_int_equal(size, 0);

    assert_int_equal(open_files_release(t, of), 1);
    assert_int_equal(open_files_contains(t, "/e.bak"), 1);
    assert_int_equal(open_files_stat(t, "/e.bak", &size, NULL), 1);
    assert_int_equal(write_file_finish(of->file), 0);
    assert_int_equal(open_files_contains(t, "/e.bak"), 1);
    open_files_remove(t, of);
    assert_int_equal(open_files_contains(t, "/e.bak"), 0);
    write_file_free(of->file);
    open_file_destroy(of);
    size_t got_len = 9;
    kv_list md;
    uint8_t *got = read_object(&f, "e.bak", &got_len, &md);
    assert_int_equal(got_len, 0);
    assert_string_equal(kv_list_get(&md, "mode"), "33152");
    assert_string_equal(kv_list_get(&md, "uid"), "42");
    assert_string_equal(kv_list_get(&md, "gid"), "43");
    kv_list_free(&md);
    free(got);
    open_files_free(t);
    fixture_free(&f);
}

/* Review item 7: a file unlinked while open is not uploaded by its last release, and a new file of the
 * same name gets a state of its own. */
static void test_deleted_while_open_is_discarded(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    open_file_table *t = open_files_new();
    make_arg arg = { &f, 0100644 };
    open_file *of = NULL, *again = NULL;
    assert_int_equal(open_files_acquire(t, "/gone.bak", make_new, &f.ctx, &arg, &of), 0);
    assert_int_equal(write_file_write(of->file, "doomed", 6, 0), 6);
    assert_int_equal(open_files_mark_deleted(t, "/gone.bak"), 1);
    assert_int_equal(open_files_contains(t, "/gone.bak"), 0);
    assert_int_equal(open_files_acquire(t, "/gone.bak", make_new, &f.ctx, &arg, &again), 0);
    assert_ptr_not_equal(again, of);
    assert_int_equal(open_files_release(t, of), 1);
    assert_int_equal(write_file_finish(of->file), 0);
    open_files_remove(t, of);
    write_file_free(of->file);
    open_file_destroy(of);
    assert_int_equal(objc_memory_object_count(f.memory), 0);
    assert_int_equal(open_files_contains(t, "/gone.bak"), 1);   /* the new one */
    assert_int_equal(open_files_release(t, again), 1);
    assert_int_equal(write_file_finish(again->file), 0);
    open_files_remove(t, again);
    write_file_free(again->file);
    open_file_destroy(again);
    assert_int_equal(objc_memory_object_count(f.memory), 1);
    open_files_free(t);
    fixture_free(&f);
}

/* Review item 5: an out-of-order write inside the reorder window while this stream's own parts in
 * flight hold the memory must wait for them, not fail (the upload had started: leaving the stream is
 * impossible, so the old 2 s wait ended in EIO). */
static void test_window_waits_for_own_parts(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    part_uploader_free(f.uploader);
    memory_budget_destroy(&f.ctx.memory);
    f.ctx.options.max_memory = 12 * MIB;
    assert_int_equal(memory_budget_init(&f.ctx.memory, f.ctx.options.max_memory), 0);
    object_client *slow = objc_new_faulty(f.memory, 0);
    objc_fault_rule rule = { .ops_mask = OBJC_OP_MPU_PART, .after_calls = 0, .fail_count = 0,
                             .kind = AWS_ERR_NETWORK, .code = "", .delay_ms = 3000 };
    assert_int_equal(objc_faulty_add_rule(slow, &rule), 0);
    f.ctx.objects = slow;
    f.uploader = part_uploader_new(slow, &f.ctx.counters, 2);
    assert_non_null(f.uploader);
    size_t len = 10 * MIB;
    uint8_t *data = malloc(len);
    fill(data, len, 11);
    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/win.bak", 0100644, &wf), 0);
    size_t in_order = 6 * MIB, gap = MIB / 2, ahead = 3 * MIB;
    assert_int_equal(write_file_write(wf, (const char *)data, in_order, 0), (ssize_t)in_order);
    assert_int_equal(write_file_write(wf, (const char *)data + in_order + gap, ahead, (off_t)(in_order + gap)),
                     (ssize_t)ahead);
    assert_int_equal(write_file_write(wf, (const char *)data + in_order, gap, (off_t)in_order), (ssize_t)gap);
    size_t done = in_order + gap + ahead;
    assert_int_equal(write_file_write(wf, (const char *)data + done, len - done, (off_t)done), (ssize_t)(len - done));
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    size_t got_len = 0;
    uint8_t *got = read_object(&f, "win.bak", &got_len, NULL);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, data, len);
    free(got);
    free(data);
    fixture_free(&f);
}

/* Review item 9: a read-only reader of a file being streamed is sent to the object (-EAGAIN) instead of
 * moving the stream into the spool; the writer's own read-back still works. */
static void test_reader_does_not_disturb_stream(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/r.bak", 0100644, &wf), 0);
    assert_int_equal(write_file_write(wf, "0123456789", 10, 0), 10);
    char buf[16];
    assert_int_equal(write_file_read_ex(wf, buf, sizeof buf, 0, 0), -EAGAIN);
    assert_int_equal(f.ctx.counters.spool_fallbacks, 0);
    assert_int_equal(write_file_write(wf, "abc", 3, 10), 3);
    assert_int_equal(write_file_uploads(wf), 0);
    assert_int_equal(write_file_finish(wf), 0);
    assert_int_equal(write_file_uploads(wf), 1);
    write_file_free(wf);
    size_t got_len = 0;
    uint8_t *got = read_object(&f, "r.bak", &got_len, NULL);
    assert_int_equal(got_len, 13);
    assert_memory_equal(got, "0123456789abc", 13);
    free(got);
    fixture_free(&f);
}

static void json_string(char *out, size_t cap, const char *v)
{
    size_t n = 0;
    out[n++] = '"';
    for (; *v && n + 3 < cap; v++) {
        if (*v == '"' || *v == '\\')
            out[n++] = '\\';
        out[n++] = *v;
    }
    out[n++] = '"';
    out[n] = 0;
}

/* Review item 8: appending to an object whose envelope is in <key>.instruction decrypts the old
 * content (not re-encrypting its ciphertext as if it were plaintext). */
static void test_append_to_instruction_file_object(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    uint8_t old[3000];
    fill(old, sizeof old, 5);
    store_file(&f, "/ins.bak", old, sizeof old, 0100644);
    /* Move the envelope out of the metadata into ins.bak.instruction (JSON, section 6). */
    uint8_t *body = NULL;
    size_t len = 0;
    kv_list md, plain_md, instr_md;
    assert_int_equal(objc_memory_get_object(f.memory, "ins.bak", &body, &len, &md), 0);
    kv_list_init(&plain_md);
    kv_list_init(&instr_md);
    char json[4096] = "{", value[2048];
    for (size_t i = 0; i < md.count; i++) {
        const kv_pair *kv = &md.items[i];
        if (strncmp(kv->name, "x-amz-", 6) == 0) {
            json_string(value, sizeof value, kv->value);
            snprintf(json + strlen(json), sizeof json - strlen(json), "%s\"%s\":%s", strlen(json) > 1 ? "," : "",
                     kv->name, value);
        } else {
            assert_int_equal(kv_list_set(&plain_md, kv->name, kv->value), 0);
        }
    }
    strcat(json, "}");
    assert_int_equal(kv_list_set(&instr_md, "x-amz-crypto-instr-file", ""), 0);
    aws_error err;
    aws_error_clear(&err);
    assert_int_equal(f.memory->ops->put(f.memory, "ins.bak.instruction", &instr_md, (const uint8_t *)json,
                                        strlen(json), &err), 0);
    assert_int_equal(f.memory->ops->put(f.memory, "ins.bak", &plain_md, body, len, &err), 0);
    free(body);
    kv_list_free(&md);
    kv_list_free(&plain_md);
    kv_list_free(&instr_md);

    write_file *wf = NULL;
    assert_int_equal(write_file_new_existing(&f.ctx, f.uploader, "/ins.bak", &wf), 0);
    assert_int_equal(write_file_write(wf, "tail", 4, sizeof old), 4);
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    size_t got_len = 0;
    uint8_t *got = read_object(&f, "ins.bak", &got_len, NULL);
    assert_int_equal(got_len, sizeof old + 4);
    assert_memory_equal(got, old, sizeof old);
    assert_memory_equal(got + sizeof old, "tail", 4);
    free(got);
    /* The new object carries its envelope in its metadata: the old instruction file is gone. */
    assert_int_equal(objc_memory_get_object(f.memory, "ins.bak.instruction", NULL, NULL, NULL), -1);
    fixture_free(&f);
}

/* A plain file (name outside the policy) written with O_TRUNC over an object whose envelope an SDK kept
 * in <key>.instruction: the instruction file goes, so the plain bytes read as they are, not through
 * the old envelope. A file that replaces an object with a metadata envelope costs no DELETE. */
static void test_plain_overwrite_drops_stale_instruction(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    aws_error err;
    aws_error_clear(&err);
    kv_list none;
    kv_list_init(&none);
    const char *envelope = "{\"x-amz-key-v2\":\"AAAA\",\"x-amz-iv\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}";
    assert_int_equal(f.memory->ops->put(f.memory, "old.txt.instruction", &none, (const uint8_t *)envelope,
                                        strlen(envelope), &err), 0);
    uint8_t cipherish[64];
    fill(cipherish, sizeof cipherish, 9);
    assert_int_equal(f.memory->ops->put(f.memory, "old.txt", &none, cipherish, sizeof cipherish, &err), 0);

    write_file *wf = NULL;
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/old.txt", 0, &wf), 0);
    assert_int_equal(write_file_write(wf, "new plain text", 14, 0), 14);
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    assert_int_equal(objc_memory_get_object(f.memory, "old.txt.instruction", NULL, NULL, NULL), -1);
    size_t got_len = 0;
    uint8_t *got = NULL;
    kv_list md;
    assert_int_equal(objc_memory_get_object(f.memory, "old.txt", &got, &got_len, &md), 0);
    assert_null(kv_list_get_ci(&md, "x-amz-key-v2"));
    assert_int_equal(got_len, 14);
    assert_memory_equal(got, "new plain text", 14);
    free(got);
    kv_list_free(&md);

    /* A file of that name that is not an envelope is the user's own: it stays. */
    assert_int_equal(f.memory->ops->put(f.memory, "notes.txt.instruction", &none, (const uint8_t *)"my notes", 8,
                                        &err), 0);
    assert_int_equal(f.memory->ops->put(f.memory, "notes.txt", &none, (const uint8_t *)"v1", 2, &err), 0);
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/notes.txt", 0, &wf), 0);
    assert_int_equal(write_file_write(wf, "v2", 2, 0), 2);
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    assert_int_equal(objc_memory_get_object(f.memory, "notes.txt.instruction", NULL, NULL, NULL), 0);

    /* Over an object with its envelope in metadata: no DELETE is sent. */
    uint8_t data[100];
    fill(data, sizeof data, 3);
    store_file(&f, "/meta.bak", data, sizeof data, 0100644);
    objc_memory_reset_stats(f.memory);
    assert_int_equal(write_file_new_empty(&f.ctx, f.uploader, "/meta.bak", 0, &wf), 0);
    assert_int_equal(write_file_write(wf, (const char *)data, 50, 0), 50);
    assert_int_equal(write_file_finish(wf), 0);
    write_file_free(wf);
    objc_memory_counts counts;
    objc_memory_stats(f.memory, &counts);
    assert_int_equal(counts.delete_one, 0);
    fixture_free(&f);
}

typedef struct {
    object_client *store;
} replacer_arg;

static void *replace_soon(void *arg)
{
    replacer_arg *a = arg;
    usleep(200 * 1000);
    uint8_t other[3000];
    memset(other, 'B', sizeof other);
    kv_list md;
    kv_list_init(&md);
    aws_error err;
    aws_error_clear(&err);
    a->store->ops->put(a->store, "swap.dat", &md, other, sizeof other, &err);
    return NULL;
}

/* Review item 4 (write_load): an object replaced between the HEAD and the GETs of a read-back for a
 * change fails the change (EIO) instead of mixing the new version's bytes with the old one's size and
 * envelope. A plain name, so that the old code would have succeeded silently. */
static void test_read_back_pinned_to_etag(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    uint8_t first[3000];
    memset(first, 'A', sizeof first);
    kv_list md;
    kv_list_init(&md);
    aws_error err;
    aws_error_clear(&err);
    assert_int_equal(f.memory->ops->put(f.memory, "swap.dat", &md, first, sizeof first, &err), 0);
    object_client *slow = objc_new_faulty(f.memory, 0);
    objc_fault_rule rule = { .ops_mask = OBJC_OP_GET, .after_calls = 0, .fail_count = 0,
                             .kind = AWS_ERR_NETWORK, .code = "", .delay_ms = 600 };
    assert_int_equal(objc_faulty_add_rule(slow, &rule), 0);
    f.ctx.objects = slow;
    write_file *wf = NULL;
    assert_int_equal(write_file_new_existing(&f.ctx, f.uploader, "/swap.dat", &wf), 0);
    replacer_arg arg = { f.memory };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, replace_soon, &arg), 0);
    assert_int_equal(write_file_write(wf, "tail", 4, sizeof first), -EIO);
    pthread_join(th, NULL);
    assert_int_equal(write_file_finish(wf), -EIO);
    write_file_free(wf);
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(objc_memory_get_object(f.memory, "swap.dat", &body, &len, &md), 0);
    assert_int_equal(len, 3000);
    assert_int_equal(body[0], 'B');
    free(body);
    kv_list_free(&md);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_finish_stays_failed),
        cmocka_unit_test(test_grow_never_shrinks),
        cmocka_unit_test(test_truncate_to_zero_keeps_attributes),
        cmocka_unit_test(test_unmount_aborts_open_writers),
        cmocka_unit_test(test_entry_visible_until_removed),
        cmocka_unit_test(test_deleted_while_open_is_discarded),
        cmocka_unit_test(test_window_waits_for_own_parts),
        cmocka_unit_test(test_reader_does_not_disturb_stream),
        cmocka_unit_test(test_append_to_instruction_file_object),
        cmocka_unit_test(test_plain_overwrite_drops_stale_instruction),
        cmocka_unit_test(test_read_back_pinned_to_etag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
