/* S3 document handling without a server: ListObjectsV2, ListMultipartUploads, Initiate/Complete
 * results (including S3's 200-with-<Error>), DeleteObjects results, error bodies of S3, STS and KMS,
 * request bodies (CompleteMultipartUpload, DeleteObjects), request targets (path and virtual style,
 * key encoding) and the CRC32C header value. Expected values come from the S3 API documentation's
 * examples and RFC 3986, written by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crc32c.h"
#include "http.h"
#include "s3_url.h"
#include "s3_xml.h"

#define S(x) x, strlen(x)

static const char list_v2_page[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>bucket</Name><Prefix>dir%2F</Prefix><KeyCount>3</KeyCount><MaxKeys>3</MaxKeys>"
    "<Delimiter>%2F</Delimiter><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
    "<Contents><Key>dir/a+b%2Bc%25.bak</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>"
    "<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size><StorageClass>STANDARD</StorageClass></Contents>"
    "<Contents><Key>dir/%C3%A9t%C3%A9</Key><LastModified>2009-10-12T17:50:00Z</LastModified>"
    "<ETag>&quot;d41d8cd98f00b204e9800998ecf8427e-2&quot;</ETag><Size>0</Size></Contents>"
    "<CommonPrefixes><Prefix>dir/sub%20one/</Prefix></CommonPrefixes>"
    "<CommonPrefixes><Prefix>dir/sub2/</Prefix></CommonPrefixes>"
    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
    "</ListBucketResult>";

static void test_list_objects_v2(void **state)
{
    (void)state;
    objc_list_page page;
    aws_error err;
    assert_int_equal(s3_xml_parse_list_objects(S(list_v2_page), &page, &err), 0);
    assert_int_equal(page.object_count, 2);
    assert_string_equal(page.objects[0].key, "dir/a b+c%.bak");
    assert_int_equal(page.objects[0].size, 434234);
    assert_string_equal(page.objects[0].etag, "\"fba9dede5f27731c9771645a39863328\"");
    assert_int_equal(page.objects[0].last_modified, 1255369830);
    assert_string_equal(page.objects[1].key, "dir/\xc3\xa9t\xc3\xa9");
    assert_int_equal(page.objects[1].size, 0);
    assert_int_equal(page.objects[1].last_modified, 1255369800);
    assert_int_equal(page.prefix_count, 2);
    assert_string_equal(page.prefixes[0], "dir/sub one/");
    assert_string_equal(page.prefixes[1], "dir/sub2/");
    assert_non_null(page.next_token);
    assert_string_equal(page.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
    objc_list_page_free(&page);
}

static void test_list_last_page_and_plain_keys(void **state)
{
    (void)state;
    const char *xml = "<ListBucketResult><IsTruncated>false</IsTruncated>"
                      "<Contents><Key>a+b%20c</Key><Size>5</Size></Contents></ListBucketResult>";
    objc_list_page page;
    assert_int_equal(s3_xml_parse_list_objects(S(xml), &page, NULL), 0);
    assert_string_equal(page.objects[0].key, "a+b%20c");    /* no EncodingType: taken literally */
    assert_null(page.next_token);
    assert_int_equal(page.prefix_count, 0);
    objc_list_page_free(&page);
}

static void test_list_malformed(void **state)
{
    (void)state;
    objc_list_page page;
    aws_error err;
    const char *bad[] = {
        "<ListBucketResult><Contents><Size>5</Size></Contents></ListBucketResult>",            /* no key */
        "<ListBucketResult><Contents><Key>a</Key><Size>-5</Size></Contents></ListBucketResult>",
        "<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%2</Key><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%00b</Key><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",                /* no token */
        "<ListBucketResult><Contents><Key>a</Key>",                                            /* truncated */
        "<!DOCTYPE x [<!ENTITY a \"b\">]><ListBucketResult/>",
        "<Other/>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(s3_xml_parse_list_objects(S(bad[i]), &page, &err), AWS_ERR_PARSE);
        assert_int_equal(err.kind, AWS_ERR_PARSE);
    }
}

static void test_xml_limits(void **state)
{
    (void)state;
    char deep[65 * 7 + 1] = "";
    for (int i = 0; i < 65; i++)
        strcat(deep, "<a>");
    for (int i = 0; i < 65; i++)
        strcat(deep, "</a>");
    aws_error err;
    assert_null(xml_parse(deep, strlen(deep), &err));     /* 65 levels, well-formed: refused */
    assert_int_equal(err.kind, AWS_ERR_PARSE);
    assert_non_null(strstr(err.message, "deeper"));
    char ok[64 * 7 + 1] = "";
    for (int i = 0; i < 64; i++)
        strcat(ok, "<a>");
    for (int i = 0; i < 64; i++)
        strcat(ok, "</a>");
    xml_node *root = xml_parse(ok, strlen(ok), &err);    /* 64 levels: fine */
    assert_non_null(root);
    xml_free(root);
    const char *bomb = "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]>"
                       "<l>&b;</l>";
    assert_null(xml_parse(bomb, strlen(bomb), &err));
    assert_null(xml_parse("", 0, &err));
    assert_null(xml_parse("<a></b>", 7, &err));
    assert_null(xml_parse("<a/><b/>", 8, &err));
}

static void test_list_uploads(void **state)
{
    (void)state;
    const char *page1 =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
        "<ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Bucket>bucket</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>"
        "<NextKeyMarker>my%20movie.m2ts</NextKeyMarker><NextUploadIdMarker>YW55IGlkZWEgd2h5</NextUploadIdMarker>"
        "<EncodingType>url</EncodingType><MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>"
        "<Upload><Key>my-divisor</Key><UploadId>XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw</UploadId>"
        "<Initiator><ID>arn:aws:iam::111122223333:user/user1</ID></Initiator>"
        "<StorageClass>STANDARD</StorageClass><Initiated>2010-11-10T20:48:33.000Z</Initiated></Upload>"
        "<Upload><Key>my%20movie.m2ts</Key><UploadId>VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>"
        "<Initiated>2010-11-10T20:48:34.000Z</Initiated></Upload></ListMultipartUploadsResult>";
    const char *page2 = "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
                        "<Upload><Key>z</Key><UploadId>id3</UploadId><Initiated>2010-11-10T20:49:33.000Z</Initiated></Upload>"
                        "</ListMultipartUploadsResult>";
    objc_upload *ups = NULL;
    size_t n = 0;
    char *km, *im;
    assert_int_equal(s3_xml_parse_list_uploads(S(page1), &ups, &n, &km, &im, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(km, "my movie.m2ts");
    assert_string_equal(im, "YW55IGlkZWEgd2h5");
    assert_string_equal(ups[1].key, "my movie.m2ts");
    assert_string_equal(ups[0].upload_id, "XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw");
    free(km);
    free(im);
    assert_int_equal(s3_xml_parse_list_uploads(S(page2), &ups, &n, &km, &im, NULL), 0);
    assert_int_equal(n, 3);
    assert_null(km);
    assert_null(im);
    assert_string_equal(ups[2].key, "z");
    assert_int_equal(ups[2].initiated - ups[0].initiated, 60);
    objc_uploads_free(ups, n);
}

static void test_initiate_and_complete(void **state)
{
    (void)state;
    char *id = NULL;
    const char *init = "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                       "<Bucket>b</Bucket><Key>k</Key><UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>";
    assert_int_equal(s3_xml_parse_initiate(S(init), &id, NULL), 0);
    assert_string_equal(id, "VXBsb2FkIElE");
    free(id);

    char etag[80];
    const char *done = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                       "<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                       "<Location>http://b.s3.amazonaws.com/k</Location><Bucket>b</Bucket><Key>k</Key>"
                       "<ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag></CompleteMultipartUploadResult>";
    assert_int_equal(s3_xml_parse_complete(S(done), etag, sizeof etag, NULL), 0);
    assert_string_equal(etag, "\"3858f62230ac3c915f300c664312c11f-9\"");
    assert_true(s3_etag_is_multipart(etag, 9));
    assert_false(s3_etag_is_multipart(etag, 8));
    assert_true(s3_etag_is_multipart("3858f62230ac3c915f300c664312c11f-10000", 10000));
    assert_false(s3_etag_is_multipart("\"3858f62230ac3c915f300c664312c11f\"", 1));
    assert_false(s3_etag_is_multipart("\"3858f62230ac3c915f300c664312c1-9\"", 9));
    assert_false(s3_etag_is_multipart("\"3858f62230ac3c915f300c664312c11f-9x\"", 9));

    /* The documented trap: status 200, body <Error>. It must become a (retryable) service error. */
    aws_error err;
    const char *trap = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n<Error><Code>InternalError</Code>"
                       "<Message>We encountered an internal error. Please try again.</Message>"
                       "<RequestId>656c76696e6727732072657175657374</RequestId>"
                       "<HostId>Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/C1NPcfTWAtRPfTaOFg==</HostId></Error>";
    assert_int_equal(s3_xml_parse_complete(S(trap), etag, sizeof etag, &err), AWS_ERR_SERVICE);
    assert_string_equal(err.code, "InternalError");
    assert_string_equal(err.request_id, "656c76696e6727732072657175657374");
    assert_true(http_retry_code_is_retryable(err.code));
    assert_int_equal(s3_xml_parse_copy(S(trap), "CopyObjectResult", etag, sizeof etag, &err), AWS_ERR_SERVICE);

    const char *copy = "<CopyObjectResult><LastModified>2009-10-28T22:32:00Z</LastModified>"
                       "<ETag>\"9b2cf535f27731c974343645a3985328\"</ETag></CopyObjectResult>";
    assert_int_equal(s3_xml_parse_copy(S(copy), "CopyObjectResult", etag, sizeof etag, NULL), 0);
    assert_string_equal(etag, "\"9b2cf535f27731c974343645a3985328\"");
    assert_int_equal(s3_xml_parse_copy(S(copy), "CopyPartResult", etag, sizeof etag, &err), AWS_ERR_PARSE);
    assert_int_equal(s3_xml_parse_copy(S("<CopyPartResult></CopyPartResult>"), "CopyPartResult", etag, sizeof etag, &err),
                     AWS_ERR_INTEGRITY);
}

static void test_delete_result(void **state)
{
    (void)state;
    aws_error err;
    assert_int_equal(s3_xml_parse_delete_result(S("<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>"), &err), 0);
    const char *failed = "<DeleteResult><Deleted><Key>a</Key></Deleted><Error><Key>sample2.txt</Key>"
                         "<Code>AccessDenied</Code><Message>Access Denied</Message></Error></DeleteResult>";
    assert_int_equal(s3_xml_parse_delete_result(S(failed), &err), AWS_ERR_SERVICE);
    assert_string_equal(err.code, "AccessDenied");
    assert_non_null(strstr(err.message, "sample2.txt"));
}

static void test_error_bodies(void **state)
{
    (void)state;
    aws_error err;
    memset(&err, 0, sizeof err);
    const char *s3 = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
                     "<Message>The resource you requested does not exist</Message><Resource>/mybucket/myfoto.jpg</Resource>"
                     "<RequestId>4442587FB7D0A2F9</RequestId></Error>";
    assert_true(http_parse_error_body((const uint8_t *)s3, strlen(s3), &err));
    assert_string_equal(err.code, "NoSuchKey");
    assert_string_equal(err.message, "The resource you requested does not exist");
    assert_string_equal(err.request_id, "4442587FB7D0A2F9");

    memset(&err, 0, sizeof err);
    const char *sts = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>"
                      "<Code>AccessDenied</Code><Message>not authorized to perform sts:AssumeRole</Message></Error>"
                      "<RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>";
    assert_true(http_parse_error_body((const uint8_t *)sts, strlen(sts), &err));
    assert_string_equal(err.code, "AccessDenied");
    assert_string_equal(err.request_id, "c6104cbe-af31-11e0-8154-cbc7ccf896c7");

    memset(&err, 0, sizeof err);
    const char *kms = "{\"__type\":\"com.amazonaws.kms#NotFoundException\",\"message\":\"Alias arn:aws:kms:x is not found.\"}";
    assert_true(http_parse_error_body((const uint8_t *)kms, strlen(kms), &err));
    assert_string_equal(err.code, "NotFoundException");
    assert_string_equal(err.message, "Alias arn:aws:kms:x is not found.");

    memset(&err, 0, sizeof err);
    const char *kms2 = "  {\"__type\":\"InvalidCiphertextException\",\"Message\":\"\"}";
    assert_true(http_parse_error_body((const uint8_t *)kms2, strlen(kms2), &err));
    assert_string_equal(err.code, "InvalidCiphertextException");

    memset(&err, 0, sizeof err);
    assert_false(http_parse_error_body((const uint8_t *)"Bad Gateway", 11, &err));
    assert_false(http_parse_error_body((const uint8_t *)"<html><body>502</body></html>", 29, &err));
    assert_false(http_parse_error_body((const uint8_t *)"{\"x\":1}", 7, &err));
    assert_string_equal(err.code, "");
}

static void test_request_bodies(void **state)
{
    (void)state;
    objc_part parts[2] = {
        {.part_number = 1, .etag = "\"a54357aff0632cce46d942af68356b38\"", .checksum_crc32c = "4waSgw=="},
        {.part_number = 2, .etag = "\"0c78aef83f66abc1fa1e8477f296d394\""},
    };
    xml_buf b;
    xml_buf_init(&b);
    s3_xml_build_complete(parts, 2, &b);
    assert_false(b.failed);
    assert_string_equal(b.data,
        "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Part><ChecksumCRC32C>4waSgw==</ChecksumCRC32C><ETag>&quot;a54357aff0632cce46d942af68356b38&quot;</ETag>"
        "<PartNumber>1</PartNumber></Part>"
        "<Part><ETag>&quot;0c78aef83f66abc1fa1e8477f296d394&quot;</ETag><PartNumber>2</PartNumber></Part>"
        "</CompleteMultipartUpload>");
    xml_buf_free(&b);

    const char *keys[] = {"a&b<c>.bak", "it's \"q\"", "tab\there"};
    s3_xml_build_delete(keys, 3, &b);
    assert_string_equal(b.data,
        "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>"
        "<Object><Key>a&amp;b&lt;c&gt;.bak</Key></Object>"
        "<Object><Key>it&apos;s &quot;q&quot;</Key></Object>"
        "<Object><Key>tab&#x9;here</Key></Object></Delete>");
    /* And our own parser reads the escaped keys back unchanged. */
    xml_node *root = xml_parse(b.data, b.len, NULL);
    assert_non_null(root);
    const xml_node *o = xml_child(root, "Object");
    assert_string_equal(xml_child_text(o, "Key"), "a&b<c>.bak");
    o = xml_next_same(o);
    assert_string_equal(xml_child_text(o, "Key"), "it's \"q\"");
    o = xml_next_same(o);
    assert_string_equal(xml_child_text(o, "Key"), "tab\there");
    xml_free(root);
    xml_buf_free(&b);
}

static void expect_target(const char *endpoint, const char *key, int path_style, const char *want_ep,
                          const char *want_path)
{
    char *ep = NULL, *path = NULL;
    assert_int_equal(s3_build_target(endpoint, "my-bucket", key, path_style, &ep, &path), 0);
    assert_string_equal(ep, want_ep);
    assert_string_equal(path, want_path);
    free(ep);
    free(path);
}

static void test_targets(void **state)
{
    (void)state;
    expect_target("http://127.0.0.1:5056", "dir/a b+c%d.bak", 1, "http://127.0.0.1:5056", "/my-bucket/dir/a%20b%2Bc%25d.bak");
    expect_target("https://s3.eu-west-1.amazonaws.com", "dir/a b", 0, "https://my-bucket.s3.eu-west-1.amazonaws.com",
                  "/dir/a%20b");
    expect_target("https://s3.eu-west-1.amazonaws.com/", "x//y/", 0, "https://my-bucket.s3.eu-west-1.amazonaws.com",
                  "/x//y/");
    expect_target("http://localhost:9000", "\xc3\xa9t\xc3\xa9~_-.", 1, "http://localhost:9000", "/my-bucket/%C3%A9t%C3%A9~_-.");
    expect_target("http://localhost:9000", NULL, 1, "http://localhost:9000", "/my-bucket");
    expect_target("https://s3.amazonaws.com", "", 0, "https://my-bucket.s3.amazonaws.com", "/");
    char *ep, *path;
    assert_int_equal(s3_build_target("no-scheme", "b", "k", 1, &ep, &path), -1);
    char *src = s3_copy_source("my-bucket", "a b/c+d");
    assert_string_equal(src, "/my-bucket/a%20b/c%2Bd");
    free(src);
}

static void test_endpoint_host(void **state)
{
    (void)state;
    char host[64];
    assert_int_equal(http_endpoint_host("http://127.0.0.1:5056", host, sizeof host), 0);
    assert_string_equal(host, "127.0.0.1:5056");
    assert_int_equal(http_endpoint_host("https://Bucket.S3.amazonaws.com:443", host, sizeof host), 0);
    assert_string_equal(host, "bucket.s3.amazonaws.com");
    assert_int_equal(http_endpoint_host("http://h:80/", host, sizeof host), 0);
    assert_string_equal(host, "h");
    assert_int_equal(http_endpoint_host("https://h:80", host, sizeof host), 0);
    assert_string_equal(host, "h:80");
    assert_int_equal(http_endpoint_host("h:80", host, sizeof host), -1);
}

/* The x-amz-checksum-crc32c value we send: the CRC32C check value of "123456789" is 0xE3069283
 * (RFC 3720 / the CRC catalogue), sent as base64 of its big-endian bytes e3 06 92 83. */
static void test_checksum_header_value(void **state)
{
    (void)state;
    char b64[9];
    crc32c_base64(crc32c(0, "123456789", 9), b64);
    assert_string_equal(b64, "4waSgw==");
    crc32c_base64(crc32c(0, "", 0), b64);
    assert_string_equal(b64, "AAAAAA==");
    /* 32 bytes of zeros: 0x8A9136AA (RFC 3720 B.4). */
    uint8_t zeros[32] = {0};
    crc32c_base64(crc32c(0, zeros, sizeof zeros), b64);
    assert_string_equal(b64, "ipE2qg==");
}

static void test_dates(void **state)
{
    (void)state;
    assert_int_equal(s3_parse_http_date("Mon, 12 Oct 2009 17:50:30 GMT"), 1255369830);
    assert_int_equal(s3_parse_iso8601("2009-10-12T17:50:30Z"), 1255369830);
    assert_int_equal(s3_parse_iso8601("2009-10-12T17:50:30.123+00:00"), 1255369830);
    assert_int_equal(s3_parse_iso8601("2009-10-12 17:50:30"), -1);
    assert_int_equal(s3_parse_http_date("yesterday"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_objects_v2),
        cmocka_unit_test(test_list_last_page_and_plain_keys),
        cmocka_unit_test(test_list_malformed),
        cmocka_unit_test(test_xml_limits),
        cmocka_unit_test(test_list_uploads),
        cmocka_unit_test(test_initiate_and_complete),
        cmocka_unit_test(test_delete_result),
        cmocka_unit_test(test_error_bodies),
        cmocka_unit_test(test_request_bodies),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_endpoint_host),
        cmocka_unit_test(test_checksum_header_value),
        cmocka_unit_test(test_dates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
