//! Fixed test data.

/// A self-signed CA certificate (P-256, `CN=test`; its key was discarded), for fields that
/// want a PEM certificate such as Vault's `kubernetes_ca_cert`.
pub const CA_CERT_PEM: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBczCCARmgAwIBAgIUa+udPryvp/d3gwsOf8YSmU8c52UwCgYIKoZIzj0EAwIw\n\
DzENMAsGA1UEAwwEdGVzdDAeFw0yNjExMjgxNjQ5NTBaFw0yNjExMjkxNjQ5NTBa\n\
MA8xDTALBgNVBAMMBHRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARXsdI6\n\
AXSRn5RG98vp6wtJGX3SqDaz53sB9W4QE4rJNMUgBldxdYt7/uB3fNu0n0hXV47H\n\
3wCmztH/X5IYtyyVo1MwUTAdBgNVHQ4EFgQU7Gh6HEh5RNs+yEuaNExr1atlgSMw\n\
HwYDVR0jBBgwFoAU7Gh6HEh5RNs+yEuaNExr1atlgSMwDwYDVR0TAQH/BAUwAwEB\n\
/zAKBggqhkjOPQQDAgNIADBFAiEAmAzIol4oDWj2GTGoZS4uVOn7jaY4FBGGbuQA\n\
WiSLgIkCID443W1/biNFjQQdiIb3LMKu7I6KLaHCqkNcpDHb+IM+\n\
-----END CERTIFICATE-----\n";
