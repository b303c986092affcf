/* What the read side knows about one object: HEAD result, envelope (from metadata or a
 * `<key>.instruction` object), the data key (key cache, else KMS with the envelope's contexts in order)
 * and the exact plaintext size (x-amz-unencrypted-content-length, else the CBC tail, GCM: size - 16).
 * Corrupt objects give -EIO with one log line naming the object and the cause. */
#ifndef S3CSEFS_OBJECT_INFO_H
#define S3CSEFS_OBJECT_INFO_H

#include <stdint.h>
/* aws_session.h uses the type name before declaring it: declare it first (C11 allows the repeat). */
typedef struct aws_session aws_session;
#include "fs_context.h"
#include "envelope.h"
#include "secure_mem.h"
#include "attrs.h"

/* Suffix of the object that holds an envelope outside the object's metadata (`<key>.instruction`). */
#define INSTRUCTION_SUFFIX ".instruction"

typedef struct {
    char *key;                   /* full object key */
    objc_head head;              /* stored size, ETag, Last-Modified, user metadata */
    int encrypted;
    int envelope_from_instruction;
    cse_envelope env;            /* valid when encrypted */
    int has_plain_size;
    uint64_t plain_size;
    file_attrs attrs;
    int replaced;                /* a GET found the object no longer has head.etag (AWS_ERR_CHANGED) */
} object_info;

/* HEAD + envelope. 0, -ENOENT, -EIO (envelope corrupt or unsupported: logged), -ENOMEM.
 * `instruction_hint`: 1 look for an instruction file when metadata has no envelope, 0 don't (the
 * caller knows from a listing that none exists), -1 look. */
int object_info_head(fs_context *ctx, const char *key, int instruction_hint, object_info *out);
/* The same from a HEAD result the caller already has (*head is moved into out, even on failure). */
int object_info_from_head(fs_context *ctx, const char *key, objc_head *head, int instruction_hint,
                          object_info *out);
/* The data key of an encrypted object into locked memory (*key_out, 32 bytes). 0 or -EIO (logged). */
int object_info_data_key(fs_context *ctx, const object_info *info, secure_buf **key_out);
/* Sets info->plain_size. key may be NULL (loaded when needed). 0 or -EIO (logged). */
int object_info_plain_size(fs_context *ctx, object_info *info, const uint8_t *key);
void object_info_free(object_info *info);

/* Ranged GET of the object version whose HEAD gave `etag` (If-Match), so bytes of a replacement are never
 * decrypted with the old envelope; AWS_ERR_CHANGED in err->kind when the object was replaced. Without an
 * ETag, or on a client that has no conditional GET, a plain ranged GET. Returns the client's result. */
int object_info_get_range(fs_context *ctx, const char *key, const char *etag, uint64_t offset, size_t len,
                          uint8_t *buf, size_t *got, aws_error *err);

/* One log line "<key>: <what>: <cause>" for a corrupt object, and counts it. */
void object_info_log_corrupt(fs_context *ctx, const char *key, const char *what, const char *cause);
/* After `key` was replaced by an object whose envelope is not in `<key>.instruction`: deletes that file
 * when it holds an envelope (an SDK's instruction file, now describing bytes it does not belong to);
 * leaves a missing one or anything else of that name alone. Best effort: a failure is logged. */
void object_info_drop_instruction(fs_context *ctx, const char *key);

#endif
