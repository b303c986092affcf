/* Standard base64 with padding. The decoder is strict because envelope fields come from untrusted
 * metadata: only the RFC 4648 alphabet, length a multiple of 4, '=' only as the final one or two
 * characters, and the unused low bits of the last symbol must be zero (one canonical encoding). */
#include "base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_len(size_t raw_len)
{
    return (raw_len + 2) / 3 * 4;
}

size_t base64_encode(const uint8_t *in, size_t len, char *out)
{
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t group = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[group >> 18];
        out[o++] = alphabet[(group >> 12) & 63];
        out[o++] = alphabet[(group >> 6) & 63];
        out[o++] = alphabet[group & 63];
    }
    if (len - i == 1) {
        uint32_t group = (uint32_t)in[i] << 16;
        out[o++] = alphabet[group >> 18];
        out[o++] = alphabet[(group >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (len - i == 2) {
        uint32_t group = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alphabet[group >> 18];
        out[o++] = alphabet[(group >> 12) & 63];
        out[o++] = alphabet[(group >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int symbol_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int base64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len)
{
    if (len % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int last_group = (i + 4 == len);
        int values[4];
        int padding = 0;
        for (int k = 0; k < 4; k++) {
            char c = in[i + k];
            if (c == '=' && last_group && k >= 2) {
                padding++;
                values[k] = 0;
                continue;
            }
            if (padding > 0)            /* a symbol after '=' */
                return -1;
            values[k] = symbol_value(c);
            if (values[k] < 0)
                return -1;
        }
        uint32_t group = (uint32_t)values[0] << 18 | (uint32_t)values[1] << 12 | (uint32_t)values[2] << 6 |
                         (uint32_t)values[3];
        if (padding == 2 && (group & 0xffff) != 0)
            return -1;
        if (padding == 1 && (group & 0xff) != 0)
            return -1;
        out[o++] = (uint8_t)(group >> 16);
        if (padding < 2)
            out[o++] = (uint8_t)(group >> 8);
        if (padding < 1)
            out[o++] = (uint8_t)group;
    }
    *out_len = o;
    return 0;
}
