/* Freeing helpers for the result types of object_client.h, shared by every implementation. */
#include <stdlib.h>

#include "object_client.h"

void objc_head_free(objc_head *h)
{
    if (!h)
        return;
    kv_list_free(&h->metadata);
}

void objc_list_page_free(objc_list_page *page)
{
    if (!page)
        return;
    for (size_t i = 0; page->objects && i < page->object_count; i++)
        free(page->objects[i].key);
    for (size_t i = 0; page->prefixes && i < page->prefix_count; i++)
        free(page->prefixes[i]);
    free(page->objects);
    free(page->prefixes);
    free(page->next_token);
    page->objects = NULL;
    page->prefixes = NULL;
    page->next_token = NULL;
    page->object_count = 0;
    page->prefix_count = 0;
}

void objc_uploads_free(objc_upload *uploads, size_t count)
{
    if (!uploads)
        return;
    for (size_t i = 0; i < count; i++) {
        free(uploads[i].key);
        free(uploads[i].upload_id);
    }
    free(uploads);
}
