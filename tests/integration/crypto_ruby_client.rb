#!/usr/bin/ruby
# frozen_string_literal: true

# Helper of test_crypto_ruby.sh: writes and reads objects through the AWS SDK for Ruby's own
# Aws::S3::Encryption::Client (Debian ruby-aws-sdk-s3), the official implementation of the KMS
# "Encryption-Only" format, so that s3csefs' crypto library is judged by code that is not ours.
#
#   crypto_ruby_client.rb put LOCAL KEY [instruction]   encrypt LOCAL and upload it as KEY
#   crypto_ruby_client.rb get KEY LOCAL                 download KEY and decrypt it into LOCAL
#   crypto_ruby_client.rb put-gcm LOCAL KEY             Aws::S3::EncryptionV2::Client: AES/GCM/NoPadding,
#                                                       wrap kms+context, extra context {"team":"db"}
#
# Uses AWS_ENDPOINT_URL, AWS_REGION, S3CSEFS_TEST_BUCKET, S3CSEFS_TEST_KEY_ARN and the credentials in
# the environment (all exported by tests/lib/with-stack). Exits non-zero with a message on any error.

$VERBOSE = nil # the V1 client warns about its deprecation on construction; keep the output clean
require 'aws-sdk-s3'
require 'aws-sdk-kms'

command, first, second, location = ARGV
unless %w[put get put-gcm].include?(command) && first && second
  warn 'usage: crypto_ruby_client.rb put LOCAL KEY [instruction] | get KEY LOCAL | put-gcm LOCAL KEY'
  exit 2
end
bucket = ENV.fetch('S3CSEFS_TEST_BUCKET')
common = { region: ENV.fetch('AWS_REGION', 'us-east-1'), endpoint: ENV.fetch('AWS_ENDPOINT_URL') }
s3 = Aws::S3::Client.new(**common, force_path_style: true)
kms = Aws::KMS::Client.new(**common)
key_arn = ENV.fetch('S3CSEFS_TEST_KEY_ARN')
client = Aws::S3::Encryption::Client.new(
  client: s3, kms_client: kms, kms_key_id: key_arn,
  envelope_location: location == 'instruction' ? :instruction_file : :metadata
)

begin
  if command == 'put'
    client.put_object(bucket: bucket, key: second, body: File.binread(first))
  elsif command == 'put-gcm'
    v2 = Aws::S3::EncryptionV2::Client.new(client: s3, kms_client: kms, kms_key_id: key_arn,
                                           key_wrap_schema: :kms_context,
                                           content_encryption_schema: :aes_gcm_no_padding,
                                           security_profile: :v2)
    v2.put_object(bucket: bucket, key: second, body: File.binread(first),
                  kms_encryption_context: { 'team' => 'db' })
  else
    File.binwrite(second, client.get_object(bucket: bucket, key: first).body.read)
  end
rescue StandardError => e
  warn "crypto_ruby_client.rb: #{command} failed: #{e.class}: #{e.message}"
  exit 1
end
