/* Recomputes the identity S3 gives a completed multipart object from our part list (see the header). */
#include "s3_mpu_proof.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "crc32c.h"

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The ETag without quotes: start and length. */
static const char *unquote(const char *etag, size_t *len)
{
    size_t n = strlen(etag);
    if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
        *len = n - 2;
        return etag + 1;
    }
    *len = n;
    return etag;
}

static int md5_from_etag(const char *etag, uint8_t md5[16])
{
    size_t n;
    const char *hex = unquote(etag, &n);
    if (n != 32)
        return -1;
    for (size_t i = 0; i < 16; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        md5[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int s3_expected_multipart_etag(const objc_part *parts, size_t count, char *out, size_t cap)
{
    if (!parts || count == 0)
        return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        uint8_t md5[16];
        if (md5_from_etag(parts[i].etag, md5) != 0 || EVP_DigestUpdate(ctx, md5, sizeof md5) != 1)
            rc = -1;
    }
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (rc == 0 && (EVP_DigestFinal_ex(ctx, digest, &digest_len) != 1 || digest_len != 16))
        rc = -1;
    EVP_MD_CTX_free(ctx);
    if (rc)
        return -1;
    char hex[33];
    for (size_t i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    return (size_t)snprintf(out, cap, "%s-%zu", hex, count) < cap ? 0 : -1;
}

int s3_expected_composite_crc32c(const objc_part *parts, size_t count, char *out, size_t cap)
{
    if (!parts || count == 0)
        return -1;
    uint32_t crc = 0;
    for (size_t i = 0; i < count; i++) {
        const char *b64 = parts[i].checksum_crc32c;
        uint8_t raw[8];
        size_t raw_len = 0;
        if (!b64[0] || base64_decode(b64, strlen(b64), raw, &raw_len) != 0 || raw_len != 4)
            return -1;
        crc = crc32c(crc, raw, raw_len);
    }
    char b64[9];
    crc32c_base64(crc, b64);
    return (size_t)snprintf(out, cap, "%s-%zu", b64, count) < cap ? 0 : -1;
}

int s3_etag_equal(const char *a, const char *b)
{
    if (!a || !b)
        return 0;
    size_t na, nb;
    const char *pa = unquote(a, &na), *pb = unquote(b, &nb);
    return na == nb && na > 0 && strncasecmp(pa, pb, na) == 0;
}
