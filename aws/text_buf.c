/* The AWS layer's growable text buffer (see text_buf.h). */
#include "text_buf.h"

#include <stdlib.h>
#include <string.h>

#include "secure_mem.h"

void text_buf_init(text_buf *b)
{
    memset(b, 0, sizeof *b);
}

void text_buf_free(text_buf *b)
{
    if (b->data)
        secure_wipe(b->data, b->cap);
    free(b->data);
    text_buf_init(b);
}

void text_buf_append_n(text_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        /* Not realloc: the old block is wiped before it is released. */
        char *grown = malloc(cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        if (b->data) {
            memcpy(grown, b->data, b->len + 1);
            secure_wipe(b->data, b->cap);
            free(b->data);
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void text_buf_append(text_buf *b, const char *s)
{
    text_buf_append_n(b, s, strlen(s));
}

void text_buf_append_char(text_buf *b, char c)
{
    text_buf_append_n(b, &c, 1);
}

char *text_buf_finish(text_buf *b)
{
    if (b->failed) {
        text_buf_free(b);
        return NULL;
    }
    char *text = b->data ? b->data : strdup("");
    text_buf_init(b);
    return text;
}
