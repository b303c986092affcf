/* Slicing of EVP cipher updates into int-sized calls (see evp_util.h). */
#include "evp_util.h"

cse_status evp_update_sliced(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len)
{
    if (ctx == NULL || out_len == NULL || (len > 0 && (in == NULL || out == NULL)))
        return CSE_ERR_ARGUMENT;
    size_t written = 0;
    while (len > 0) {
        size_t slice = len < EVP_UTIL_SLICE ? len : EVP_UTIL_SLICE;
        int produced = 0;
        if (EVP_CipherUpdate(ctx, out + written, &produced, in, (int)slice) != 1 || produced < 0)
            return CSE_ERR_OPENSSL;
        written += (size_t)produced;
        in += slice;
        len -= slice;
    }
    *out_len += written;
    return CSE_OK;
}

cse_status evp_update_exact(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t len, uint8_t *out)
{
    size_t written = 0;
    cse_status status = evp_update_sliced(ctx, in, len, out, &written);
    if (status == CSE_OK && written != len)
        return CSE_ERR_OPENSSL;
    return status;
}
