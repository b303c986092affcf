/* The in-memory object client behaves as S3 documents: ETags (quoted, as S3 sends them: RFC 1321 MD5,
 * and the multipart "md5 of part md5s"-N form, expected values computed with Python's hashlib), ranged GET edges,
 * the multipart lifecycle with S3's completion errors, ListObjectsV2 paging with delimiters in byte
 * order, CopyObject directives, the 2 KB metadata limit, and concurrent writers. */
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
#include <unistd.h>

#include "object_client.h"
#include "objc_memory.h"

static int setup(void **state)
{
    object_client *c = objc_new_memory();
    if (!c)
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    objc_free(*state);
    return 0;
}

static void put_text(object_client *c, const char *key, const char *text)
{
    aws_error err;
    assert_int_equal(c->ops->put(c, key, NULL, (const uint8_t *)text, strlen(text), &err), 0);
}

/* Part i of the multipart fixtures: bytes (7i + j) mod 251, as the Python reference computed them. */
static uint8_t *fixture_part(int i, size_t n)
{
    uint8_t *p = malloc(n);
    assert_non_null(p);
    for (size_t j = 0; j < n; j++)
        p[j] = (uint8_t)((7 * (size_t)i + j) % 251);
    return p;
}

static void test_put_head_get_and_etag(void **state)
{
    object_client *c = *state;
    aws_error err;
    kv_list meta;
    kv_list_init(&meta);
    assert_int_equal(kv_list_add(&meta, "X-Amz-IV", "aXY="), 0);
    assert_int_equal(kv_list_add(&meta, "mode", "0644"), 0);
    assert_int_equal(c->ops->put(c, "a/abc", &meta, (const uint8_t *)"abc", 3, &err), 0);
    kv_list_free(&meta);

    objc_head h;
    assert_int_equal(c->ops->head(c, "a/abc", &h, &err), 0);
    assert_int_equal(h.size, 3);
    assert_string_equal(h.etag, "\"900150983cd24fb0d6963f7d28e17f72\"");   /* RFC 1321: MD5("abc") */
    assert_true(h.last_modified > 0);
    assert_string_equal(kv_list_get(&h.metadata, "x-amz-iv"), "aXY=");  /* names stored lower case */
    assert_null(kv_list_get(&h.metadata, "X-Amz-IV"));
    assert_string_equal(kv_list_get(&h.metadata, "mode"), "0644");
    assert_int_equal(h.metadata.count, 2);
    objc_head_free(&h);

    put_text(c, "empty", "");
    assert_int_equal(c->ops->head(c, "empty", &h, &err), 0);
    assert_int_equal(h.size, 0);
    assert_string_equal(h.etag, "\"d41d8cd98f00b204e9800998ecf8427e\"");   /* RFC 1321: MD5("") */
    objc_head_free(&h);

    /* Overwrite replaces body, ETag and metadata. */
    put_text(c, "a/abc", "message digest");
    assert_int_equal(c->ops->head(c, "a/abc", &h, &err), 0);
    assert_string_equal(h.etag, "\"f96b697d7cb7938d525a2f31aaf161d0\"");   /* RFC 1321 */
    assert_int_equal(h.metadata.count, 0);
    objc_head_free(&h);

    uint8_t *bytes;
    size_t len;
    assert_int_equal(objc_memory_get_object(c, "a/abc", &bytes, &len, NULL), 0);
    assert_int_equal(len, 14);
    assert_memory_equal(bytes, "message digest", 14);
    free(bytes);
    assert_int_equal(objc_memory_get_object(c, "a/missing", &bytes, &len, NULL), -1);
}

static void test_missing_object_errors(void **state)
{
    object_client *c = *state;
    aws_error err;
    objc_head h;
    assert_int_equal(c->ops->head(c, "nope", &h, &err), AWS_ERR_NOT_FOUND);
    assert_int_equal(err.kind, AWS_ERR_NOT_FOUND);
    assert_int_equal(err.http_status, 404);
    assert_string_equal(err.code, "NotFound");           /* HEAD has no body: no NoSuchKey */
    uint8_t buf[4];
    size_t got = 99;
    assert_int_equal(c->ops->get_range(c, "nope", 0, 4, buf, &got, &err), AWS_ERR_NOT_FOUND);
    assert_int_equal(err.http_status, 404);
    assert_string_equal(err.code, "NoSuchKey");
    assert_int_equal(got, 0);
    /* Deleting what is not there succeeds, as in S3. */
    assert_int_equal(c->ops->delete_object(c, "nope", &err), 0);
}

static void test_get_range_edges(void **state)
{
    object_client *c = *state;
    aws_error err;
    put_text(c, "r", "0123456789");
    uint8_t buf[16];
    size_t got = 0;
    assert_int_equal(c->ops->get_range(c, "r", 2, 3, buf, &got, &err), 0);
    assert_int_equal(got, 3);
    assert_memory_equal(buf, "234", 3);
    assert_int_equal(c->ops->get_range(c, "r", 7, 16, buf, &got, &err), 0);   /* partial at the end */
    assert_int_equal(got, 3);
    assert_memory_equal(buf, "789", 3);
    assert_int_equal(c->ops->get_range(c, "r", 10, 4, buf, &got, &err), 0);   /* at the end */
    assert_int_equal(got, 0);
    assert_int_equal(c->ops->get_range(c, "r", 1000, 4, buf, &got, &err), 0); /* past the end */
    assert_int_equal(got, 0);
    assert_int_equal(c->ops->get_range(c, "r", 0, 10, buf, &got, &err), 0);
    assert_int_equal(got, 10);
    assert_memory_equal(buf, "0123456789", 10);
}

static void test_metadata_limit(void **state)
{
    object_client *c = *state;
    aws_error err;
    kv_list meta;
    kv_list_init(&meta);
    char value[2100];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    value[2048 - 4] = '\0';                      /* "name" + 2044 bytes = exactly 2 KB: allowed */
    assert_int_equal(kv_list_add(&meta, "name", value), 0);
    assert_int_equal(c->ops->put(c, "m", &meta, (const uint8_t *)"x", 1, &err), 0);
    kv_list_free(&meta);
    value[2048 - 4] = 'v';
    value[2048 - 3] = '\0';                      /* one byte more */
    assert_int_equal(kv_list_add(&meta, "name", value), 0);
    assert_int_equal(c->ops->put(c, "m2", &meta, (const uint8_t *)"x", 1, &err), AWS_ERR_SERVICE);
    assert_int_equal(err.http_status, 400);
    assert_string_equal(err.code, "MetadataTooLarge");
    char *id = NULL;
    assert_int_equal(c->ops->mpu_create(c, "m3", &meta, &id, &err), AWS_ERR_SERVICE);
    assert_null(id);
    kv_list_free(&meta);
    assert_int_equal(objc_memory_get_object(c, "m2", NULL, NULL, NULL), -1);
}

static void upload(object_client *c, const char *key, const char *id, int number, const uint8_t *body, size_t len,
                   objc_part *part)
{
    aws_error err;
    assert_int_equal(c->ops->mpu_upload_part(c, key, id, number, body, len, part, &err), 0);
    assert_int_equal(part->part_number, number);
}

static void test_multipart_lifecycle(void **state)
{
    object_client *c = *state;
    aws_error err;
    assert_int_equal(objc_memory_set_min_part_size(c, 32), 0);
    kv_list meta;
    kv_list_init(&meta);
    assert_int_equal(kv_list_add(&meta, "X-Amz-Key-V2", "blob"), 0);
    char *id = NULL;
    assert_int_equal(c->ops->mpu_create(c, "big.bak", &meta, &id, &err), 0);
    kv_list_free(&meta);
    assert_non_null(id);

    size_t sizes[3] = { 32, 32, 5 };
    uint8_t *body[3];
    objc_part parts[3];
    /* Uploaded out of order, as parallel upload workers do. */
    for (int i = 2; i >= 0; i--) {
        body[i] = fixture_part(i + 1, sizes[i]);
        upload(c, "big.bak", id, i + 1, body[i], sizes[i], &parts[i]);
    }
    assert_string_equal(parts[0].etag, "\"732ab251c70794a63a96317a1f7ba6f4\"");   /* hashlib md5 of part 1 */

    /* Invisible before completion: not headable, not listed; listed as an upload. */
    objc_head h;
    assert_int_equal(c->ops->head(c, "big.bak", &h, &err), AWS_ERR_NOT_FOUND);
    objc_list_page page;
    assert_int_equal(c->ops->list_page(c, "", NULL, NULL, 0, &page, &err), 0);
    assert_int_equal(page.object_count, 0);
    objc_list_page_free(&page);
    objc_upload *ups = NULL;
    size_t nups = 0;
    assert_int_equal(c->ops->mpu_list(c, "big", &ups, &nups, &err), 0);
    assert_int_equal(nups, 1);
    assert_string_equal(ups[0].key, "big.bak");
    assert_string_equal(ups[0].upload_id, id);
    objc_uploads_free(ups, nups);
    assert_int_equal(c->ops->mpu_list(c, "other", &ups, &nups, &err), 0);
    assert_int_equal(nups, 0);
    objc_uploads_free(ups, nups);

    assert_int_equal(c->ops->mpu_complete(c, "big.bak", id, parts, 3, &err), 0);
    assert_int_equal(c->ops->head(c, "big.bak", &h, &err), 0);
    assert_int_equal(h.size, 69);
    /* hashlib: md5(md5(p1)+md5(p2)+md5(p3)).hexdigest() + "-3" */
    assert_string_equal(h.etag, "\"82d429293222f9056fd6ddc2c9947d1b-3\"");
    assert_string_equal(kv_list_get(&h.metadata, "x-amz-key-v2"), "blob");
    objc_head_free(&h);
    uint8_t *bytes;
    size_t len;
    assert_int_equal(objc_memory_get_object(c, "big.bak", &bytes, &len, NULL), 0);
    assert_int_equal(len, 69);
    assert_memory_equal(bytes, body[0], 32);
    assert_memory_equal(bytes + 32, body[1], 32);
    assert_memory_equal(bytes + 64, body[2], 5);
    free(bytes);
    assert_int_equal(objc_memory_upload_count(c), 0);

    /* The upload is gone: every further use of its id is NoSuchUpload. */
    assert_int_equal(c->ops->mpu_complete(c, "big.bak", id, parts, 3, &err), AWS_ERR_NOT_FOUND);
    assert_string_equal(err.code, "NoSuchUpload");
    assert_int_equal(err.http_status, 404);
    assert_int_equal(c->ops->mpu_abort(c, "big.bak", id, &err), AWS_ERR_NOT_FOUND);
    assert_string_equal(err.code, "NoSuchUpload");
    for (int i = 0; i < 3; i++)
        free(body[i]);
    free(id);
}

static void test_part_checksums(void **state)
{
    object_client *c = *state;
    aws_error err;
    char *id = NULL;
    assert_int_equal(c->ops->mpu_create(c, "k", NULL, &id, &err), 0);
    objc_part part;
    upload(c, "k", id, 1, (const uint8_t *)"123456789", 9, &part);
    /* CRC32C("123456789") = 0xE3069283 (RFC 3720 check value), base64 of its big-endian bytes. */
    assert_string_equal(part.checksum_crc32c, "4waSgw==");
    assert_string_equal(part.etag, "\"25f9e794323b453885f5181f1b624d0b\"");   /* MD5("123456789") */
    /* A completion naming a different checksum is refused (the part the caller meant is not there). */
    objc_part wrong = part;
    strcpy(wrong.checksum_crc32c, "AAAAAA==");
    assert_int_equal(c->ops->mpu_complete(c, "k", id, &wrong, 1, &err), AWS_ERR_SERVICE);
    assert_string_equal(err.code, "InvalidPart");
    /* S3 takes the ETag in the completion request with or without its quotes. */
    objc_part unquoted = part;
    snprintf(unquoted.etag, sizeof unquoted.etag, "%.32s", part.etag + 1);
    assert_int_equal(c->ops->mpu_complete(c, "k", id, &unquoted, 1, &err), 0);
    free(id);
}

static void test_multipart_completion_errors(void **state)
{
    object_client *c = *state;
    aws_error err;
    char *id = NULL;
    assert_int_equal(c->ops->mpu_create(c, "x", NULL, &id, &err), 0);
    const size_t five_mib = 5 * 1024 * 1024;
    uint8_t *big = calloc(1, five_mib);
    assert_non_null(big);
    objc_part p[4];
    upload(c, "x", id, 1, big, five_mib - 1, &p[0]);   /* one byte under S3's minimum */
    upload(c, "x", id, 2, big, 10, &p[1]);
    assert_int_equal(c->ops->mpu_complete(c, "x", id, p, 2, &err), AWS_ERR_SERVICE);
    assert_int_equal(err.http_status, 400);
    assert_string_equal(err.code, "EntityTooSmall");
    assert_int_equal(objc_memory_get_object(c, "x", NULL, NULL, NULL), -1);

    /* Re-uploading part 1 at exactly 5 MiB replaces it; a small last part is fine. */
    upload(c, "x", id, 1, big, five_mib, &p[0]);
    objc_part reversed[2] = { p[1], p[0] };
    assert_int_equal(c->ops->mpu_complete(c, "x", id, reversed, 2, &err), AWS_ERR_SERVICE);
    assert_string_equal(err.code, "InvalidPartOrder");
    objc_part twice[2] = { p[0], p[0] };
    assert_int_equal(c->ops->mpu_complete(c, "x", id, twice, 2, &err), AWS_ERR_SERVICE);
    assert_string_equal(err.code, "InvalidPartOrder");
    objc_part never[2] = { p[0], p[1] };
    never[1].part_number = 3;                          /* not uploaded */
    assert_int_equal(c->ops->mpu_complete(c, "x", id, never, 2, &err), AWS_ERR_SERVICE);
    assert_string_equal(err.code, "InvalidPart");
    objc_part stale[2] = { p[0], p[1] };
    stale[0].etag[1] = stale[0].etag[1] == '0' ? '1' : '0';   /* not the ETag of the current part 1 */
    assert_int_equal(c->ops->mpu_complete(c, "x", id, stale, 2, &err), AWS_ERR_SERVICE);
    assert_string_equal(err.code, "InvalidPart");
    assert_int_equal(c->ops->mpu_complete(c, "x", id, p, 0, &err), AWS_ERR_SERVICE);
    assert_string_equal(err.code, "MalformedXML");
    assert_int_equal(c->ops->mpu_upload_part(c, "x", id, 0, big, 1, &p[2], &err), AWS_ERR_SERVICE);
    assert_string_equal(err.code, "InvalidArgument");
    assert_int_equal(c->ops->mpu_upload_part(c, "x", id, 10001, big, 1, &p[2], &err), AWS_ERR_SERVICE);
    assert_int_equal(c->ops->mpu_upload_part(c, "x", "mem-1-bogus", 1, big, 1, &p[2], &err), AWS_ERR_NOT_FOUND);
    assert_string_equal(err.code, "NoSuchUpload");
    assert_int_equal(c->ops->mpu_upload_part(c, "other-key", id, 1, big, 1, &p[2], &err), AWS_ERR_NOT_FOUND);

    /* Failed completions leave the upload usable; now a valid one. */
    assert_int_equal(c->ops->mpu_complete(c, "x", id, p, 2, &err), 0);
    uint8_t *bytes;
    size_t len;
    assert_int_equal(objc_memory_get_object(c, "x", &bytes, &len, NULL), 0);
    assert_int_equal(len, five_mib + 10);
    free(bytes);
    free(big);
    free(id);
}

static void test_multipart_abort_and_unlisted_parts(void **state)
{
    object_client *c = *state;
    aws_error err;
    objc_memory_set_min_part_size(c, 0);
    put_text(c, "keep", "old body");
    char *id = NULL, *id2 = NULL;
    assert_int_equal(c->ops->mpu_create(c, "keep", NULL, &id, &err), 0);
    assert_int_equal(c->ops->mpu_create(c, "keep", NULL, &id2, &err), 0);
    assert_string_not_equal(id, id2);
    objc_part p[3];
    upload(c, "keep", id, 1, (const uint8_t *)"new", 3, &p[0]);
    assert_int_equal(c->ops->mpu_abort(c, "keep", id, &err), 0);
    /* An abort leaves the previous object untouched, and the upload unusable. */
    uint8_t *bytes;
    size_t len;
    assert_int_equal(objc_memory_get_object(c, "keep", &bytes, &len, NULL), 0);
    assert_int_equal(len, 8);
    free(bytes);
    assert_int_equal(c->ops->mpu_upload_part(c, "keep", id, 2, (const uint8_t *)"z", 1, &p[1], &err),
                     AWS_ERR_NOT_FOUND);
    assert_string_equal(err.code, "NoSuchUpload");
    assert_int_equal(c->ops->mpu_complete(c, "keep", id, p, 1, &err), AWS_ERR_NOT_FOUND);
    assert_int_equal(objc_memory_upload_count(c), 1);

    /* Parts uploaded but not named in the completion are not part of the object. */
    upload(c, "keep", id2, 1, (const uint8_t *)"AA", 2, &p[0]);
    upload(c, "keep", id2, 2, (const uint8_t *)"BB", 2, &p[1]);
    upload(c, "keep", id2, 3, (const uint8_t *)"CC", 2, &p[2]);
    objc_part chosen[2] = { p[0], p[2] };
    assert_int_equal(c->ops->mpu_complete(c, "keep", id2, chosen, 2, &err), 0);
    assert_int_equal(objc_memory_get_object(c, "keep", &bytes, &len, NULL), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(bytes, "AACC", 4);
    free(bytes);
    free(id);
    free(id2);
}

static void test_upload_ids_unique(void **state)
{
    object_client *c = *state;
    aws_error err;
    char *ids[200];
    for (int i = 0; i < 200; i++)
        assert_int_equal(c->ops->mpu_create(c, i % 2 ? "a" : "b", NULL, &ids[i], &err), 0);
    for (int i = 0; i < 200; i++)
        for (int j = i + 1; j < 200; j++)
            assert_string_not_equal(ids[i], ids[j]);
    objc_upload *ups;
    size_t n;
    assert_int_equal(c->ops->mpu_list(c, "", &ups, &n, &err), 0);
    assert_int_equal(n, 200);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(ups[i - 1].key, ups[i].key) <= 0);   /* ordered by key */
    objc_uploads_free(ups, n);
    assert_int_equal(c->ops->mpu_list(c, "a", &ups, &n, &err), 0);
    assert_int_equal(n, 100);
    objc_uploads_free(ups, n);
    for (int i = 0; i < 200; i++)
        free(ids[i]);
}

/* Collects every entry of a listing, page by page, checking each page's shape. */
typedef struct {
    char **entries;   /* "K:<key>" or "P:<prefix>" in the order returned */
    size_t count;
    int pages;
} listing;

static void list_all(object_client *c, const char *prefix, const char *delimiter, int max_keys, listing *out)
{
    memset(out, 0, sizeof *out);
    out->entries = calloc(5000, sizeof *out->entries);
    char *token = NULL;
    aws_error err;
    do {
        objc_list_page page;
        assert_int_equal(c->ops->list_page(c, prefix, delimiter, token, max_keys, &page, &err), 0);
        out->pages++;
        size_t n = page.object_count + page.prefix_count;
        assert_true(n <= (size_t)(max_keys > 0 ? max_keys : 1000));
        if (page.next_token)
            assert_int_equal(n, (size_t)(max_keys > 0 ? max_keys : 1000));   /* only full pages continue */
        /* Merge the page's keys and prefixes into one byte-ordered run, as S3 orders them. */
        size_t i = 0, j = 0;
        while (i < page.object_count || j < page.prefix_count) {
            int take_key = j >= page.prefix_count ||
                           (i < page.object_count && strcmp(page.objects[i].key, page.prefixes[j]) < 0);
            char *e;
            assert_true(asprintf(&e, "%s:%s", take_key ? "K" : "P", take_key ? page.objects[i].key : page.prefixes[j]) > 0);
            out->entries[out->count++] = e;
            if (take_key)
                i++;
            else
                j++;
        }
        free(token);
        token = page.next_token ? strdup(page.next_token) : NULL;
        objc_list_page_free(&page);
    } while (token);
}

static void listing_free(listing *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->entries[i]);
    free(l->entries);
}

static void test_list_pagination_with_delimiter(void **state)
{
    object_client *c = *state;
    char key[64];
    /* 360 keys: two "directories" below dir/, files directly in dir/, and keys outside the prefix. */
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "dir/a/%03d", i);
        put_text(c, key, "x");
        snprintf(key, sizeof key, "dir/b/sub/%03d", i);
        put_text(c, key, "x");
        snprintf(key, sizeof key, "dir/file%03d", i);
        put_text(c, key, "x");
    }
    for (int i = 0; i < 60; i++) {
        snprintf(key, sizeof key, "top%03d", i);
        put_text(c, key, "x");
    }
    put_text(c, "dir/", "directory marker");
    put_text(c, "dis", "near miss");

    /* Expected: "dir/" itself, the two common prefixes, the 100 files, in byte order. */
    const int expected_count = 1 + 2 + 100;
    int page_sizes[] = { 1, 2, 7, 50, 1000, 0 };
    for (size_t s = 0; s < sizeof page_sizes / sizeof page_sizes[0]; s++) {
        listing l;
        list_all(c, "dir/", "/", page_sizes[s], &l);
        assert_int_equal(l.count, expected_count);
        assert_string_equal(l.entries[0], "K:dir/");
        assert_string_equal(l.entries[1], "P:dir/a/");
        assert_string_equal(l.entries[2], "P:dir/b/");
        for (int i = 0; i < 100; i++) {
            snprintf(key, sizeof key, "K:dir/file%03d", i);
            assert_string_equal(l.entries[3 + i], key);
        }
        int size = page_sizes[s] > 0 ? page_sizes[s] : 1000;
        assert_int_equal(l.pages, (expected_count + size - 1) / size);
        listing_free(&l);
    }

    /* Without a delimiter: every key under the prefix. */
    listing all;
    list_all(c, "dir/", NULL, 37, &all);
    assert_int_equal(all.count, 301);
    for (size_t i = 1; i < all.count; i++)
        assert_true(strcmp(all.entries[i - 1], all.entries[i]) < 0);
    listing_free(&all);

    /* Delimiter from the bucket root. */
    listing root;
    list_all(c, "", "/", 5, &root);
    assert_int_equal(root.count, 1 + 1 + 60);   /* dir/, dis, top000..top059 */
    assert_string_equal(root.entries[0], "P:dir/");
    assert_string_equal(root.entries[1], "K:dis");
    listing_free(&root);

    /* A prefix that matches nothing. */
    listing none;
    list_all(c, "zzz", "/", 5, &none);
    assert_int_equal(none.count, 0);
    assert_int_equal(none.pages, 1);
    listing_free(&none);

    /* A garbled continuation token is refused. */
    objc_list_page page;
    aws_error err;
    assert_int_equal(c->ops->list_page(c, "dir/", "/", "not-a-token", 10, &page, &err), AWS_ERR_SERVICE);
    assert_string_equal(err.code, "InvalidArgument");
}

static void test_list_byte_order_and_fields(void **state)
{
    object_client *c = *state;
    /* UTF-8 "é" (0xC3 0xA9) sorts after every ASCII key; "B" < "a" by byte value. */
    put_text(c, "\xc3\xa9t\xc3\xa9", "1");
    put_text(c, "zebra", "22");
    put_text(c, "a", "a");
    put_text(c, "B", "4444");
    objc_list_page page;
    aws_error err;
    assert_int_equal(c->ops->list_page(c, NULL, NULL, NULL, 100, &page, &err), 0);
    assert_int_equal(page.object_count, 4);
    assert_null(page.next_token);
    assert_string_equal(page.objects[0].key, "B");
    assert_string_equal(page.objects[1].key, "a");
    assert_string_equal(page.objects[2].key, "zebra");
    assert_string_equal(page.objects[3].key, "\xc3\xa9t\xc3\xa9");
    assert_int_equal(page.objects[0].size, 4);
    assert_string_equal(page.objects[1].etag, "\"0cc175b9c0f1b6a831c399e269772661\"");   /* RFC 1321: MD5("a") */
    assert_int_equal(page.objects[2].size, 2);
    assert_true(page.objects[3].last_modified > 0);
    objc_list_page_free(&page);
}

static void test_copy_directives(void **state)
{
    object_client *c = *state;
    aws_error err;
    kv_list meta, repl;
    kv_list_init(&meta);
    kv_list_init(&repl);
    assert_int_equal(kv_list_add(&meta, "x-amz-iv", "AAAA"), 0);
    assert_int_equal(kv_list_add(&meta, "mode", "0600"), 0);
    assert_int_equal(c->ops->put(c, "src", &meta, (const uint8_t *)"payload", 7, &err), 0);

    assert_int_equal(c->ops->copy(c, "src", "dst-copy", OBJC_METADATA_COPY, NULL, &err), 0);
    kv_list got;
    uint8_t *bytes;
    size_t len;
    assert_int_equal(objc_memory_get_object(c, "dst-copy", &bytes, &len, &got), 0);
    assert_int_equal(len, 7);
    assert_memory_equal(bytes, "payload", 7);
    assert_true(kv_list_equal(&got, &meta));
    free(bytes);
    kv_list_free(&got);

    assert_int_equal(kv_list_add(&repl, "Mode", "0644"), 0);
    assert_int_equal(c->ops->copy(c, "src", "dst-repl", OBJC_METADATA_REPLACE, &repl, &err), 0);
    assert_int_equal(objc_memory_get_object(c, "dst-repl", NULL, NULL, &got), 0);
    assert_int_equal(got.count, 1);                          /* the complete new set, nothing kept */
    assert_string_equal(kv_list_get(&got, "mode"), "0644");
    kv_list_free(&got);

    /* Copy onto itself: refused with COPY (S3's InvalidRequest), the way to change metadata with REPLACE. */
    assert_int_equal(c->ops->copy(c, "src", "src", OBJC_METADATA_COPY, NULL, &err), AWS_ERR_SERVICE);
    assert_string_equal(err.code, "InvalidRequest");
    assert_int_equal(c->ops->copy(c, "src", "src", OBJC_METADATA_REPLACE, &repl, &err), 0);
    assert_int_equal(objc_memory_get_object(c, "src", &bytes, &len, &got), 0);
    assert_memory_equal(bytes, "payload", 7);
    assert_string_equal(kv_list_get(&got, "mode"), "0644");
    assert_null(kv_list_get(&got, "x-amz-iv"));
    free(bytes);
    kv_list_free(&got);

    assert_int_equal(c->ops->copy(c, "absent", "dst", OBJC_METADATA_COPY, NULL, &err), AWS_ERR_NOT_FOUND);
    assert_int_equal(err.http_status, 404);
    assert_string_equal(err.code, "NoSuchKey");
    assert_int_equal(objc_memory_get_object(c, "dst", NULL, NULL, NULL), -1);
    kv_list_free(&meta);
    kv_list_free(&repl);
}

static void test_copy_of_multipart_gets_plain_etag(void **state)
{
    object_client *c = *state;
    aws_error err;
    objc_memory_set_min_part_size(c, 32);
    char *id;
    assert_int_equal(c->ops->mpu_create(c, "mp", NULL, &id, &err), 0);
    size_t sizes[3] = { 32, 32, 5 };
    objc_part parts[3];
    uint8_t *body[3];
    for (int i = 0; i < 3; i++) {
        body[i] = fixture_part(i + 1, sizes[i]);
        upload(c, "mp", id, i + 1, body[i], sizes[i], &parts[i]);
    }
    assert_int_equal(c->ops->mpu_complete(c, "mp", id, parts, 3, &err), 0);
    assert_int_equal(c->ops->copy(c, "mp", "mp-copy", OBJC_METADATA_COPY, NULL, &err), 0);
    objc_head h;
    assert_int_equal(c->ops->head(c, "mp-copy", &h, &err), 0);
    assert_string_equal(h.etag, "\"4bba3e7e1b5627a484e4d779cef3d7e9\"");   /* hashlib md5 of the 69 bytes */
    objc_head_free(&h);
    for (int i = 0; i < 3; i++)
        free(body[i]);
    free(id);
}

static void test_delete_objects_batches(void **state)
{
    object_client *c = *state;
    aws_error err;
    char *keys[2500];
    for (int i = 0; i < 2500; i++) {
        assert_true(asprintf(&keys[i], "d/%04d", i) > 0);
        if (i % 2 == 0)   /* half of them exist */
            put_text(c, keys[i], "x");
    }
    put_text(c, "survivor", "x");
    objc_memory_reset_stats(c);
    assert_int_equal(c->ops->delete_objects(c, (const char *const *)keys, 2500, &err), 0);
    objc_memory_counts counts;
    assert_int_equal(objc_memory_stats(c, &counts), 0);
    assert_int_equal(counts.delete_requests, 3);            /* 1000 keys per DeleteObjects request */
    assert_int_equal(objc_memory_object_count(c), 1);
    for (int i = 0; i < 2500; i++)
        free(keys[i]);
}

static void test_stats(void **state)
{
    object_client *c = *state;
    aws_error err;
    objc_memory_reset_stats(c);
    put_text(c, "s", "12345");
    uint8_t buf[8];
    size_t got;
    assert_int_equal(c->ops->get_range(c, "s", 1, 8, buf, &got, &err), 0);
    objc_head h;
    assert_int_equal(c->ops->head(c, "s", &h, &err), 0);
    objc_head_free(&h);
    assert_int_equal(c->ops->head(c, "t", &h, &err), AWS_ERR_NOT_FOUND);
    objc_memory_counts counts;
    assert_int_equal(objc_memory_stats(c, &counts), 0);
    assert_int_equal(counts.put, 1);
    assert_int_equal(counts.bytes_put, 5);
    assert_int_equal(counts.get, 1);
    assert_int_equal(counts.bytes_got, 4);
    assert_int_equal(counts.head, 2);
    assert_int_equal(counts.failed, 1);
    assert_int_equal(counts.list + counts.copy + counts.mpu_create, 0);
}

#define WRITERS 8
#define KEYS_PER_WRITER 200

typedef struct {
    object_client *c;
    int id;
    int failures;
} writer_arg;

static void *writer(void *arg)
{
    writer_arg *w = arg;
    char key[64], body[64];
    aws_error err;
    for (int i = 0; i < KEYS_PER_WRITER; i++) {
        snprintf(key, sizeof key, "w%d/%03d", w->id, i);
        snprintf(body, sizeof body, "writer %d item %d", w->id, i);
        if (w->c->ops->put(w->c, key, NULL, (const uint8_t *)body, strlen(body), &err) != 0)
            w->failures++;
        snprintf(body, sizeof body, "shared by %d", w->id);
        if (w->c->ops->put(w->c, "shared", NULL, (const uint8_t *)body, strlen(body), &err) != 0)
            w->failures++;
        objc_list_page page;
        if (i % 50 == 0 && w->c->ops->list_page(w->c, "w", NULL, NULL, 10, &page, &err) == 0)
            objc_list_page_free(&page);
    }
    return NULL;
}

static void test_concurrent_puts(void **state)
{
    object_client *c = *state;
    objc_memory_reset_stats(c);
    pthread_t t[WRITERS];
    writer_arg args[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        args[i] = (writer_arg){ .c = c, .id = i };
        assert_int_equal(pthread_create(&t[i], NULL, writer, &args[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    assert_int_equal(objc_memory_object_count(c), WRITERS * KEYS_PER_WRITER + 1);
    objc_memory_counts counts;
    objc_memory_stats(c, &counts);
    assert_int_equal(counts.put, 2 * WRITERS * KEYS_PER_WRITER);
    char key[64], expected[64];
    for (int w = 0; w < WRITERS; w++)
        for (int i = 0; i < KEYS_PER_WRITER; i++) {
            snprintf(key, sizeof key, "w%d/%03d", w, i);
            snprintf(expected, sizeof expected, "writer %d item %d", w, i);
            uint8_t *bytes;
            size_t len;
            assert_int_equal(objc_memory_get_object(c, key, &bytes, &len, NULL), 0);
            assert_int_equal(len, strlen(expected));
            assert_memory_equal(bytes, expected, len);
            free(bytes);
        }
    /* The shared key holds one writer's whole body, never a mix. */
    uint8_t *bytes;
    size_t len;
    assert_int_equal(objc_memory_get_object(c, "shared", &bytes, &len, NULL), 0);
    assert_true(len == strlen("shared by 0"));
    assert_memory_equal(bytes, "shared by ", 10);
    free(bytes);
}

#define HOT_SIZE (64 * 1024)

typedef struct {
    object_client *c;
    atomic_int *stop;
    int torn;
    long reads;
} reader_arg;

/* Every read of the hot key must see one whole version: all bytes equal. */
static void *hot_reader(void *arg)
{
    reader_arg *r = arg;
    uint8_t *buf = malloc(HOT_SIZE);
    while (!atomic_load(r->stop)) {
        size_t got = 0;
        aws_error err;
        const char *key = r->reads % 2 ? "hot" : "hot-copy";
        if (r->c->ops->get_range(r->c, key, 0, HOT_SIZE, buf, &got, &err) != 0 || got != HOT_SIZE)
            continue;   /* the copy may not exist yet */
        for (size_t i = 1; i < got; i++)
            if (buf[i] != buf[0]) {
                r->torn++;
                break;
            }
        r->reads++;
    }
    free(buf);
    return NULL;
}

static void test_readers_see_whole_versions(void **state)
{
    object_client *c = *state;
    objc_memory_set_min_part_size(c, 0);
    atomic_int stop = 0;
    reader_arg readers[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        readers[i] = (reader_arg){ .c = c, .stop = &stop };
        assert_int_equal(pthread_create(&t[i], NULL, hot_reader, &readers[i]), 0);
    }
    uint8_t *body = malloc(HOT_SIZE);
    aws_error err;
    for (int round = 0; round < 300; round++) {
        memset(body, 'a' + round % 26, HOT_SIZE);
        if (round % 2) {
            assert_int_equal(c->ops->put(c, "hot", NULL, body, HOT_SIZE, &err), 0);
        } else {
            /* the same version arriving as a multipart upload of four parts */
            char *id;
            objc_part parts[4];
            assert_int_equal(c->ops->mpu_create(c, "hot", NULL, &id, &err), 0);
            for (int p = 0; p < 4; p++)
                upload(c, "hot", id, p + 1, body + p * (HOT_SIZE / 4), HOT_SIZE / 4, &parts[p]);
            assert_int_equal(c->ops->mpu_complete(c, "hot", id, parts, 4, &err), 0);
            free(id);
        }
        assert_int_equal(c->ops->copy(c, "hot", "hot-copy", OBJC_METADATA_COPY, NULL, &err), 0);
    }
    atomic_store(&stop, 1);
    long reads = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(readers[i].torn, 0);
        reads += readers[i].reads;
    }
    assert_true(reads > 0);
    free(body);
}

static void test_extras_refuse_other_clients(void **state)
{
    (void)state;
    object_client *inner = objc_new_memory();
    object_client *faulty = objc_new_faulty(inner, 1);
    objc_memory_counts counts;
    assert_int_equal(objc_memory_stats(faulty, &counts), -1);
    assert_int_equal(objc_memory_set_min_part_size(faulty, 1), -1);
    assert_int_equal(objc_memory_get_object(faulty, "k", NULL, NULL, NULL), -1);
    objc_free(faulty);
}

/* get_range_if_match: S3's If-Match on GetObject. The right ETag reads; after a replacement the old
 * ETag is 412 PreconditionFailed (AWS_ERR_CHANGED), also past the end; a missing key stays 404.
 * The fault-injecting wrapper passes it through and counts it as a GET (review finding 2). */
static void test_get_range_if_match(void **state)
{
    object_client *c = *state;
    aws_error err;
    put_text(c, "k", "first version");
    objc_head h;
    assert_int_equal(c->ops->head(c, "k", &h, &err), 0);
    char etag[80];
    snprintf(etag, sizeof etag, "%s", h.etag);
    objc_head_free(&h);
    uint8_t buf[32];
    size_t got = 99;
    assert_int_equal(c->ops->get_range_if_match(c, "k", etag, 6, 7, buf, &got, &err), 0);
    assert_int_equal(got, 7);
    assert_memory_equal(buf, "version", 7);
    put_text(c, "k", "other version");   /* same size, other bytes: the case that must not mix */
    assert_int_equal(c->ops->get_range_if_match(c, "k", etag, 0, 5, buf, &got, &err), AWS_ERR_CHANGED);
    assert_int_equal(err.http_status, 412);
    assert_string_equal(err.code, "PreconditionFailed");
    assert_int_equal(got, 0);
    assert_int_equal(c->ops->get_range_if_match(c, "k", etag, 100, 5, buf, &got, &err), AWS_ERR_CHANGED);
    assert_int_equal(c->ops->get_range_if_match(c, "absent", etag, 0, 5, buf, &got, &err), AWS_ERR_NOT_FOUND);
    assert_int_equal(c->ops->get_range_if_match(c, "k", NULL, 0, 5, buf, &got, &err), AWS_ERR_ARGUMENT);

    object_client *faulty = objc_new_faulty(c, 0);
    assert_non_null(faulty);
    assert_int_equal(faulty->ops->get_range_if_match(faulty, "k", etag, 0, 5, buf, &got, &err), AWS_ERR_CHANGED);
    assert_int_equal(c->ops->head(c, "k", &h, &err), 0);
    assert_int_equal(faulty->ops->get_range_if_match(faulty, "k", h.etag, 0, 5, buf, &got, &err), 0);
    assert_memory_equal(buf, "other", 5);
    objc_head_free(&h);
    objc_fault_rule rule = {.ops_mask = OBJC_OP_GET, .fail_count = 1, .kind = AWS_ERR_NETWORK};
    assert_int_equal(objc_faulty_add_rule(faulty, &rule), 0);
    assert_int_equal(faulty->ops->get_range_if_match(faulty, "k", etag, 0, 5, buf, &got, &err), AWS_ERR_NETWORK);
    objc_free(faulty);
}

int main(void)
{
    alarm(120);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_head_get_and_etag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_object_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_range_edges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multipart_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_part_checksums, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multipart_completion_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multipart_abort_and_unlisted_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_ids_unique, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_pagination_with_delimiter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_byte_order_and_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_directives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_of_multipart_gets_plain_etag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_objects_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_puts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readers_see_whole_versions, setup, teardown),
        cmocka_unit_test(test_extras_refuse_other_clients),
        cmocka_unit_test_setup_teardown(test_get_range_if_match, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
