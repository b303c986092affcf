/* Internals of the in-memory object_client shared by its three files: objc_memory.c (objects, GET/PUT,
 * copies, deletes, test extras), objc_memory_multipart.c (multipart uploads) and objc_memory_list.c
 * (ListObjectsV2 pagination). Not for use outside them. */
#ifndef S3CSEFS_OBJC_MEMORY_STORE_H
#define S3CSEFS_OBJC_MEMORY_STORE_H

#include "object_client.h"
#include "objc_memory.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "crc32c.h"

#define S3_MAX_PART_NUMBER 10000
#define S3_MAX_SINGLE_OBJECT ((uint64_t)5 * 1024 * 1024 * 1024)
#define S3_MAX_USER_METADATA 2048
#define S3_MAX_LIST_KEYS 1000
#define S3_DELETE_BATCH 1000

/* An immutable body buffer shared by reference between parts, objects and copies: completing a
 * multipart upload or copying an object moves pointers, not bytes, and readers copy out of a body
 * without holding the store's lock. */
typedef struct {
    atomic_size_t refs;
    size_t len;
    uint8_t bytes[];
} shared_bytes;

typedef struct {
    char *key;
    shared_bytes **segments;   /* the body, in order: one for PutObject, one per part after completion */
    size_t segment_count;
    uint64_t len;
    kv_list metadata;
    char etag[80];
    time_t last_modified;
} mem_object;

typedef struct {
    int number;
    shared_bytes *body;
    char etag[80];
    char checksum_crc32c[16];
    uint8_t md5[16];
} mem_part;

typedef struct {
    char *key;
    char *upload_id;
    time_t initiated;
    kv_list metadata;
    mem_part *parts;        /* kept sorted by part number */
    size_t part_count;
} mem_upload;

typedef struct {
    object_client base;
    pthread_mutex_t lock;
    mem_object *objects;    /* sorted by key in byte order, like S3 lists them */
    size_t object_count, object_cap;
    mem_upload *uploads;
    size_t upload_count, upload_cap;
    uint64_t next_upload_serial;
    size_t min_part_size;
    objc_memory_counts counts;
} memory_client;

/* Errors imitate the service's answers (status, code, a request id naming the double). */
#define fail(err, kind, http_status, code, ...) \
    ((int)aws_error_set_service(err, kind, http_status, code, "memory", __VA_ARGS__))

memory_client *mem_client_of(object_client *c);
shared_bytes *mem_bytes_new(const uint8_t *src, size_t len);
shared_bytes *mem_bytes_ref(shared_bytes *b);
void mem_bytes_unref(shared_bytes *b);
int mem_check_key(const char *key, aws_error *err);
void mem_clear_error(aws_error *err);
int mem_copy_metadata_lowercase(kv_list *dst, const kv_list *src, aws_error *err);
int mem_counted_failure(memory_client *m, int rc);
int mem_fail_no_memory(aws_error *err);
void mem_hex_of(const uint8_t *bytes, size_t n, char *out);
size_t mem_lower_bound(const memory_client *m, const char *key);
void mem_md5_of(const uint8_t *data, size_t len, uint8_t digest[16]);
void mem_object_free_fields(mem_object *o);
void mem_quoted_etag(const uint8_t digest[16], size_t part_count, char etag[80]);
int mem_store_object(memory_client *m, mem_object *o, aws_error *err);
int mem_etag_matches(const char *given, const char *stored);
void mem_upload_free_fields(mem_upload *u);
int mem_mpu_abort(object_client *c, const char *key, const char *upload_id, aws_error *err);
int mem_mpu_complete(object_client *c, const char *key, const char *upload_id, const objc_part *parts,
                     size_t count, aws_error *err);
int mem_mpu_create(object_client *c, const char *key, const kv_list *metadata, char **upload_id,
                   aws_error *err);
int mem_mpu_list(object_client *c, const char *prefix, objc_upload **uploads, size_t *count,
                 aws_error *err);
int mem_mpu_upload_part(object_client *c, const char *key, const char *upload_id, int part_number,
                        const uint8_t *body, size_t len, objc_part *part, aws_error *err);
int mem_list_page(object_client *c, const char *prefix, const char *delimiter, const char *token,
                  int max_keys, objc_list_page *out, aws_error *err);

#endif
