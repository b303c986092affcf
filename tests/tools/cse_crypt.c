/* cse_crypt: a command-line front end to the crypto library, so that scripts can cross-check it against
 * independent implementations (Python cryptography, the Ruby AWS SDK) and benchmark it.
 *
 *   cse_crypt enc|dec        --key HEX --iv HEX [--cuts N,N,..]   CBC+PKCS#7, stdin -> stdout
 *   cse_crypt dec-range      --key HEX --iv HEX --offset N --length N   random-access CBC read
 *   cse_crypt plainsize      --key HEX --iv HEX                    plaintext size from the last 32 bytes
 *   cse_crypt gcm-enc        --key HEX --iv HEX                    stdout = ciphertext || tag
 *   cse_crypt gcm-dec        --key HEX --iv HEX [--cuts ..]        stdin = ciphertext || tag, tag checked
 *   cse_crypt gcm-range      --key HEX --iv HEX --offset N --length N   stdin = object, unauthenticated
 *   cse_crypt envelope | instruction                               stdin = metadata / instruction JSON
 *   cse_crypt emit --profile kms|legacy --blob B64 --iv HEX --arn ARN [--plain-length N]
 *   cse_crypt crc32c                                               prints hex and base64 of stdin's CRC
 *   cse_crypt bench-enc|bench-dec|bench-crc [--mib N]               prints MB/s and CPU s/GiB
 * --cuts gives the sizes of the pieces the input is fed in (cycled; 0 = random). Crypto failures exit 2
 * with the status name on stderr (e.g. CSE_ERR_BAD_PADDING); usage errors exit 1. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "cbc_random.h"
#include "cbc_stream.h"
#include "crc32c.h"
#include "envelope.h"
#include "gcm.h"

#define MAX_CUTS 64

typedef struct {
    const char *command;
    uint8_t key[32];
    int have_key;
    uint8_t iv[16];
    size_t iv_len;
    size_t cuts[MAX_CUTS];
    size_t ncuts;
    uint64_t offset, length;
    int have_range;
    const char *profile, *blob_b64, *arn;
    int64_t plain_length;
    uint64_t mib;
} options;

static int usage(const char *why)
{
    fprintf(stderr, "cse_crypt: %s\nusage: cse_crypt enc|dec|dec-range|plainsize|gcm-enc|gcm-dec|gcm-range|"
                    "envelope|instruction|emit|crc32c|bench-enc|bench-dec|bench-crc [options]\n", why);
    return 1;
}

static int fail(cse_status st)
{
    fprintf(stderr, "cse_crypt: %s: %s\n", cse_status_name(st), cse_strerror(st));
    return 2;
}

static int parse_hex(const char *hex, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned byte;
        if (sscanf(hex + 2 * i, "%2x", &byte) != 1)
            return -1;
        out[i] = (uint8_t)byte;
    }
    *len = n / 2;
    return 0;
}

static int parse_u64(const char *text, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-')
        return -1;
    *out = v;
    return 0;
}

static int parse_options(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof(*o));
    o->command = argv[1];
    o->plain_length = -1;
    o->mib = 1024;
    for (int i = 2; i < argc; i++) {
        const char *name = argv[i];
        if (i + 1 >= argc)
            return usage("option without value");
        const char *value = argv[++i];
        size_t len;
        uint64_t number;
        if (strcmp(name, "--key") == 0) {
            if (parse_hex(value, o->key, 32, &len) != 0 || len != 32)
                return usage("--key needs 64 hex digits");
            o->have_key = 1;
        } else if (strcmp(name, "--iv") == 0) {
            if (parse_hex(value, o->iv, 16, &o->iv_len) != 0)
                return usage("--iv needs 24 or 32 hex digits");
        } else if (strcmp(name, "--cuts") == 0) {
            char *copy = strdup(value), *save = NULL;
            for (char *tok = strtok_r(copy, ",", &save); tok && o->ncuts < MAX_CUTS; tok = strtok_r(NULL, ",", &save)) {
                if (parse_u64(tok, &number) != 0) {
                    free(copy);
                    return usage("--cuts needs N,N,...");
                }
                o->cuts[o->ncuts++] = (size_t)number;
            }
            free(copy);
        } else if (strcmp(name, "--offset") == 0 && parse_u64(value, &o->offset) == 0) {
            o->have_range |= 1;
        } else if (strcmp(name, "--length") == 0 && parse_u64(value, &o->length) == 0) {
            o->have_range |= 2;
        } else if (strcmp(name, "--profile") == 0) {
            o->profile = value;
        } else if (strcmp(name, "--blob") == 0) {
            o->blob_b64 = value;
        } else if (strcmp(name, "--arn") == 0) {
            o->arn = value;
        } else if (strcmp(name, "--plain-length") == 0 && parse_u64(value, &number) == 0) {
            o->plain_length = (int64_t)number;
        } else if (strcmp(name, "--mib") == 0 && parse_u64(value, &o->mib) == 0) {
        } else {
            return usage("unknown option or bad value");
        }
    }
    return 0;
}

static uint8_t *read_all(int fd, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (buf == NULL)
            return NULL;
        if (n == cap) {
            uint8_t *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            free(buf);
            return NULL;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    *len = n;
    return buf;
}

static int write_all(const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t put = write(STDOUT_FILENO, p, len);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            return -1;
        p += put;
        len -= (size_t)put;
    }
    return 0;
}

/* The size of the next piece to feed: the cut list cycled, 0 meaning random 1..65536. */
static size_t next_piece(const options *o, size_t *index, size_t remaining)
{
    size_t piece = remaining;
    if (o->ncuts > 0) {
        piece = o->cuts[(*index)++ % o->ncuts];
        if (piece == 0)
            piece = 1 + (size_t)rand() % 65536;
    }
    return piece < remaining ? piece : remaining;
}

static int cmd_enc(const options *o, const uint8_t *in, size_t len)
{
    if (o->iv_len != 16)
        return usage("CBC needs a 16-byte --iv");
    uint8_t *out = malloc(len + 32);
    cbc_encryptor *enc = NULL;
    cse_status st = out ? cbc_encryptor_new(o->key, o->iv, &enc) : CSE_ERR_NO_MEMORY;
    size_t pos = 0, out_pos = 0, index = 0;
    while (st == CSE_OK && pos < len) {
        size_t piece = next_piece(o, &index, len - pos), produced = 0;
        st = cbc_encryptor_update(enc, in + pos, piece, out + out_pos, &produced);
        pos += piece;
        out_pos += produced;
    }
    size_t produced = 0;
    if (st == CSE_OK)
        st = cbc_encryptor_final(enc, out + out_pos, &produced);
    out_pos += produced;
    cbc_encryptor_free(enc);
    int rc = st != CSE_OK ? fail(st) : write_all(out, out_pos) == 0 ? 0 : 1;
    free(out);
    return rc;
}

/* Whole-object CBC decryption through the random-access decryptor, piece by piece (pieces rounded up to
 * whole blocks), with the strict padding check. */
static int cmd_dec(const options *o, const uint8_t *in, size_t len)
{
    if (o->iv_len != 16)
        return usage("CBC needs a 16-byte --iv");
    if (len == 0 || len % 16 != 0)
        return fail(CSE_ERR_CIPHERTEXT_LENGTH);
    uint8_t *out = malloc(len);
    cbc_decryptor *dec = NULL;
    cse_status st = out ? cbc_decryptor_new(o->key, &dec) : CSE_ERR_NO_MEMORY;
    size_t pos = 0, index = 0;
    while (st == CSE_OK && pos < len) {
        size_t piece = next_piece(o, &index, len - pos);
        piece = (piece + 15) / 16 * 16;
        if (piece > len - pos)
            piece = len - pos;
        st = cbc_decrypt_blocks(dec, pos == 0 ? o->iv : in + pos - 16, in + pos, piece, out + pos);
        pos += piece;
    }
    unsigned pad = 0;
    uint64_t size_from_tail = 0;
    if (st == CSE_OK)
        st = cbc_check_padding(out + len - 16, &pad);
    if (st == CSE_OK) {
        size_t tail = len < 32 ? len : 32;
        st = cbc_plain_size(dec, o->iv, len, in + len - tail, tail, &size_from_tail);
        if (st == CSE_OK && size_from_tail != len - pad)
            st = CSE_ERR_STATE;                 /* cannot happen unless the two paths disagree */
    }
    cbc_decryptor_free(dec);
    int rc = st != CSE_OK ? fail(st) : write_all(out, len - pad) == 0 ? 0 : 1;
    free(out);
    return rc;
}

/* Plaintext [offset, offset+length) of a CBC object, decrypting only the blocks that hold it. */
static int cmd_dec_range(const options *o, const uint8_t *in, size_t len)
{
    if (o->iv_len != 16 || o->have_range != 3)
        return usage("dec-range needs --iv (16 bytes), --offset and --length");
    if (len == 0 || len % 16 != 0)
        return fail(CSE_ERR_CIPHERTEXT_LENGTH);
    cbc_decryptor *dec = NULL;
    cse_status st = cbc_decryptor_new(o->key, &dec);
    uint64_t plain_size = 0;
    size_t tail = len < 32 ? len : 32;
    if (st == CSE_OK)
        st = cbc_plain_size(dec, o->iv, len, in + len - tail, tail, &plain_size);
    if (st != CSE_OK) {
        cbc_decryptor_free(dec);
        return fail(st);
    }
    uint64_t start = o->offset < plain_size ? o->offset : plain_size;
    uint64_t end = o->length > plain_size - start ? plain_size : start + o->length;
    int rc = 0;
    if (end > start) {
        size_t first_block = (size_t)(start / 16), last_block = (size_t)((end - 1) / 16);
        size_t span = (last_block - first_block + 1) * 16;
        uint8_t *out = malloc(span);
        st = out ? cbc_decrypt_blocks(dec, first_block == 0 ? o->iv : in + 16 * (first_block - 1),
                                      in + 16 * first_block, span, out)
                 : CSE_ERR_NO_MEMORY;
        rc = st != CSE_OK ? fail(st) : write_all(out + start % 16, (size_t)(end - start)) == 0 ? 0 : 1;
        free(out);
    }
    cbc_decryptor_free(dec);
    return rc;
}

static int cmd_plainsize(const options *o, const uint8_t *in, size_t len)
{
    if (o->iv_len != 16)
        return usage("CBC needs a 16-byte --iv");
    cbc_decryptor *dec = NULL;
    cse_status st = cbc_decryptor_new(o->key, &dec);
    uint64_t size = 0;
    size_t tail = len < 32 ? len : 32;
    if (st == CSE_OK)
        st = cbc_plain_size(dec, o->iv, len, in + len - tail, tail, &size);
    cbc_decryptor_free(dec);
    if (st != CSE_OK)
        return fail(st);
    printf("%" PRIu64 "\n", size);
    return 0;
}

static int cmd_gcm_enc(const options *o, const uint8_t *in, size_t len)
{
    if (o->iv_len != CSE_GCM_IV)
        return usage("GCM needs a 12-byte --iv");
    uint8_t *out = malloc(len + CSE_GCM_TAG);
    cse_status st = out ? gcm_encrypt_oneshot(o->key, o->iv, in, len, out, out + len) : CSE_ERR_NO_MEMORY;
    int rc = st != CSE_OK ? fail(st) : write_all(out, len + CSE_GCM_TAG) == 0 ? 0 : 1;
    free(out);
    return rc;
}

static int cmd_gcm_dec(const options *o, const uint8_t *in, size_t len)
{
    if (o->iv_len != CSE_GCM_IV)
        return usage("GCM needs a 12-byte --iv");
    if (len < CSE_GCM_TAG)
        return fail(CSE_ERR_CIPHERTEXT_LENGTH);
    size_t body = len - CSE_GCM_TAG;
    uint8_t *out = malloc(body ? body : 1);
    gcm_decryptor *dec = NULL;
    cse_status st = out ? gcm_decryptor_new(o->key, o->iv, &dec) : CSE_ERR_NO_MEMORY;
    size_t pos = 0, index = 0;
    while (st == CSE_OK && pos < body) {
        size_t piece = next_piece(o, &index, body - pos);
        st = gcm_decryptor_update(dec, in + pos, piece, out + pos);
        pos += piece;
    }
    if (st == CSE_OK)
        st = gcm_decryptor_final(dec, in + body);
    gcm_decryptor_free(dec);
    /* Nothing is released before the tag has been checked. */
    int rc = st != CSE_OK ? fail(st) : write_all(out, body) == 0 ? 0 : 1;
    free(out);
    return rc;
}

static int cmd_gcm_range(const options *o, const uint8_t *in, size_t len)
{
    if (o->iv_len != CSE_GCM_IV || o->have_range != 3)
        return usage("gcm-range needs --iv (12 bytes), --offset and --length");
    if (o->offset > len || o->length > len - o->offset)
        return usage("range outside the input");
    uint8_t *out = malloc(o->length ? o->length : 1);
    cse_status st = out ? gcm_decrypt_range(o->key, o->iv, o->offset, in + o->offset, o->length, out)
                        : CSE_ERR_NO_MEMORY;
    int rc = st != CSE_OK ? fail(st) : write_all(out, o->length) == 0 ? 0 : 1;
    free(out);
    return rc;
}

static cJSON *kv_list_to_json(const kv_list *list)
{
    cJSON *object = cJSON_CreateObject();
    for (size_t i = 0; object && i < list->count; i++)
        cJSON_AddStringToObject(object, list->items[i].name, list->items[i].value);
    return object;
}

static int print_envelope(cse_status st, cse_envelope *env)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "status", cse_status_name(st));
    if (st == CSE_OK) {
        char text[2 * CSE_MAX_KEY_BLOB], hex[33];
        base64_encode(env->encrypted_key, env->encrypted_key_len, text);
        for (size_t i = 0; i < env->iv_len; i++)
            snprintf(hex + 2 * i, 3, "%02x", env->iv[i]);
        hex[2 * env->iv_len] = '\0';
        cJSON_AddNumberToObject(root, "key_version", env->key_version);
        cJSON_AddStringToObject(root, "encrypted_key", text);
        cJSON_AddStringToObject(root, "iv", hex);
        cJSON_AddStringToObject(root, "cek_alg", cse_cek_alg_name(env->cek_alg));
        cJSON_AddStringToObject(root, "wrap_alg", env->wrap_alg == CSE_WRAP_KMS           ? "kms"
                                                  : env->wrap_alg == CSE_WRAP_KMS_CONTEXT ? "kms+context"
                                                                                           : "");
        cJSON_AddItemToObject(root, "matdesc", kv_list_to_json(&env->matdesc));
        if (env->has_plain_length)
            cJSON_AddNumberToObject(root, "plain_length", (double)env->plain_length);
        else
            cJSON_AddNullToObject(root, "plain_length");
        cJSON_AddNumberToObject(root, "tag_len", env->tag_len_bits);
        kv_list contexts[2];
        size_t count = 0;
        cse_status ctx_st = cse_envelope_kms_contexts(env, contexts, &count);
        cJSON *array = cJSON_AddArrayToObject(root, "kms_contexts");
        for (size_t i = 0; ctx_st == CSE_OK && i < count; i++)
            cJSON_AddItemToArray(array, kv_list_to_json(&contexts[i]));
        kv_list_free(&contexts[0]);
        kv_list_free(&contexts[1]);
        cse_envelope_free(env);
    }
    char *json = cJSON_PrintUnformatted(root);
    printf("%s\n", json ? json : "{}");
    cJSON_free(json);
    cJSON_Delete(root);
    return st == CSE_OK ? 0 : 2;
}

/* stdin: a JSON object of user metadata (names with or without the x-amz-meta- prefix). */
static int cmd_envelope(const uint8_t *in, size_t len)
{
    cJSON *root = cJSON_ParseWithLength((const char *)in, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return usage("envelope expects a JSON object on stdin");
    }
    kv_list md;
    kv_list_init(&md);
    for (cJSON *item = root->child; item; item = item->next) {
        if (!cJSON_IsString(item))
            continue;
        const char *name = item->string;
        if (strncasecmp(name, "x-amz-meta-", 11) == 0)
            name += 11;
        kv_list_add(&md, name, item->valuestring);
    }
    cJSON_Delete(root);
    cse_envelope env;
    cse_status st = cse_envelope_parse_metadata(&md, &env);
    kv_list_free(&md);
    return print_envelope(st, &env);
}

static int cmd_instruction(const uint8_t *in, size_t len)
{
    cse_envelope env;
    return print_envelope(cse_envelope_parse_instruction((const char *)in, len, &env), &env);
}

static int cmd_emit(const options *o)
{
    if (o->profile == NULL || o->blob_b64 == NULL || o->arn == NULL || o->iv_len != 16)
        return usage("emit needs --profile, --blob, --iv (16 bytes) and --arn");
    cse_write_profile profile;
    if (strcmp(o->profile, "kms") == 0)
        profile = CSE_PROFILE_KMS;
    else if (strcmp(o->profile, "legacy") == 0)
        profile = CSE_PROFILE_LEGACY;
    else
        return usage("--profile is kms or legacy");
    uint8_t blob[CSE_MAX_KEY_BLOB + 3];
    size_t blob_len = 0;
    if (strlen(o->blob_b64) > base64_encoded_len(CSE_MAX_KEY_BLOB) ||
        base64_decode(o->blob_b64, strlen(o->blob_b64), blob, &blob_len) != 0)
        return fail(CSE_ERR_BAD_BASE64);
    kv_list md;
    kv_list_init(&md);
    cse_status st = cse_envelope_emit(profile, blob, blob_len, o->iv, o->arn, o->plain_length, &md);
    if (st != CSE_OK)
        return fail(st);
    cJSON *root = kv_list_to_json(&md);
    char *json = cJSON_PrintUnformatted(root);
    printf("%s\n", json);
    cJSON_free(json);
    cJSON_Delete(root);
    kv_list_free(&md);
    return 0;
}

static int cmd_crc32c(const uint8_t *in, size_t len)
{
    uint32_t crc = crc32c(0, in, len);
    char text[9];
    crc32c_base64(crc, text);
    printf("%08" PRIx32 " %s\n", crc, text);
    return 0;
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* In-memory throughput over o->mib MiB in 1 MiB buffers: no I/O, only the library call measured. */
static int cmd_bench(const options *o)
{
    const size_t buf_len = 1 << 20;
    uint8_t *in = malloc(buf_len), *out = malloc(buf_len + 32);
    uint8_t key[32], iv[16];
    if (in == NULL || out == NULL)
        return fail(CSE_ERR_NO_MEMORY);
    for (size_t i = 0; i < buf_len; i++)
        in[i] = (uint8_t)(i * 131 + 7);
    memset(key, 0x5a, sizeof(key));
    memset(iv, 0xa5, sizeof(iv));
    cse_status st = CSE_OK;
    volatile uint32_t sink = 0;
    double cpu0 = cpu_seconds(), wall0 = wall_seconds();
    if (strcmp(o->command, "bench-enc") == 0) {
        cbc_encryptor *enc = NULL;
        st = cbc_encryptor_new(key, iv, &enc);
        for (uint64_t i = 0; st == CSE_OK && i < o->mib; i++) {
            size_t produced;
            st = cbc_encryptor_update(enc, in, buf_len, out, &produced);
        }
        size_t produced;
        if (st == CSE_OK)
            st = cbc_encryptor_final(enc, out, &produced);
        cbc_encryptor_free(enc);
    } else if (strcmp(o->command, "bench-dec") == 0) {
        cbc_decryptor *dec = NULL;
        st = cbc_decryptor_new(key, &dec);
        for (uint64_t i = 0; st == CSE_OK && i < o->mib; i++)
            st = cbc_decrypt_blocks(dec, iv, in, buf_len, out);
        cbc_decryptor_free(dec);
    } else {
        for (uint64_t i = 0; i < o->mib; i++)
            sink ^= crc32c(0, in, buf_len);
    }
    double cpu = cpu_seconds() - cpu0, wall = wall_seconds() - wall0;
    (void)sink;
    free(in);
    free(out);
    if (st != CSE_OK)
        return fail(st);
    double mib = (double)o->mib;
    /* The machine may be shared: MB/s per CPU second is the figure comparable with openssl speed. */
    printf("%s: %" PRIu64 " MiB in %.3f s wall, %.3f s CPU: %.0f MB/s wall, %.0f MB/s per CPU s, "
           "%.3f CPU s/GiB\n", o->command, o->mib, wall, cpu, mib * 1048576.0 / 1e6 / wall,
           mib * 1048576.0 / 1e6 / cpu, cpu * 1024.0 / mib);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage("missing command");
    options o;
    int rc = parse_options(argc, argv, &o);
    if (rc != 0)
        return rc;
    const char *c = o.command;
    if (strncmp(c, "bench-", 6) == 0)
        return cmd_bench(&o);
    if (strcmp(c, "emit") == 0)
        return cmd_emit(&o);
    size_t len = 0;
    uint8_t *in = read_all(STDIN_FILENO, &len);
    if (in == NULL)
        return usage("cannot read stdin");
    srand(1);
    if (strcmp(c, "envelope") == 0)
        rc = cmd_envelope(in, len);
    else if (strcmp(c, "instruction") == 0)
        rc = cmd_instruction(in, len);
    else if (strcmp(c, "crc32c") == 0)
        rc = cmd_crc32c(in, len);
    else if (!o.have_key)
        rc = usage("--key is required");
    else if (strcmp(c, "enc") == 0)
        rc = cmd_enc(&o, in, len);
    else if (strcmp(c, "dec") == 0)
        rc = cmd_dec(&o, in, len);
    else if (strcmp(c, "dec-range") == 0)
        rc = cmd_dec_range(&o, in, len);
    else if (strcmp(c, "plainsize") == 0)
        rc = cmd_plainsize(&o, in, len);
    else if (strcmp(c, "gcm-enc") == 0)
        rc = cmd_gcm_enc(&o, in, len);
    else if (strcmp(c, "gcm-dec") == 0)
        rc = cmd_gcm_dec(&o, in, len);
    else if (strcmp(c, "gcm-range") == 0)
        rc = cmd_gcm_range(&o, in, len);
    else
        rc = usage("unknown command");
    free(in);
    return rc;
}
