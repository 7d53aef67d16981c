/* wucme crypto fast path: certificate scan, JWS signing, tls-alpn-01 certificates, CSRs.
   This text is both the cffi cdef and the C header: plain declarations only.
   wucme/_native/fastcrypto.py is the checked layer, fastcrypto_pure.py the twin. */

/* Return codes (lengths are >= 0). */
#define FC_OK 0
#define FC_EUNSUPP -1    /* not handled here (anything unusual, every malformed input): ask the twin */
#define FC_ESPACE -2     /* the output buffer is too small; *outlen holds the size needed */
#define FC_EKEY -3       /* the key cannot be used (type, curve, or it did not load) */
#define FC_EARG -4       /* an argument is out of range */
#define FC_ECRYPTO -5    /* libcrypto failed */
#define FC_ENOENT -6     /* the file does not exist */
#define FC_EIO -7        /* the file cannot be read (the caller reads it again for the reason) */

/* Key types, as fc_key_type() returns them. */
#define FC_RSA 1
#define FC_P256 2
#define FC_P384 3

/* Kinds of name in struct fc_cert. */
#define FC_NAME_CN 1
#define FC_NAME_DNS 2
#define FC_NAME_IP 3

#define FC_MAX_NAMES 256

/* What the repository scan needs of a leaf; offsets are into the leaf's DER. */
struct fc_cert {
    long long not_before;           /* seconds since the epoch, UTC */
    long long not_after;
    int der_len;                    /* the leaf's DER is der[0 .. der_len) */
    int serial_off, serial_len;     /* INTEGER content octets, positive, minimal */
    int aki_off, aki_len;           /* keyIdentifier; aki_len -1 when there is none */
    int nnames;
    int name_type[256];
    int name_off[256];
    int name_len[256];
};

/* The leaf of a PEM chain (certificates, then any private key), every certificate
   checked.  der must hold cap >= len bytes.  FC_OK or FC_EUNSUPP. */
int fc_cert_scan(const unsigned char *pem, size_t len, unsigned char *der, size_t cap,
                 struct fc_cert *out);

/* fc_cert_scan of the file at path: FC_OK, FC_EUNSUPP, FC_ENOENT or FC_EIO. */
int fc_cert_file(const char *path, unsigned char *der, size_t cap, struct fc_cert *out);

typedef struct fc_key fc_key;

/* A private key from PEM (der = 0) or DER (der = 1), PKCS#8 or traditional; the
   consistency check is not made.  NULL when it cannot be loaded. */
fc_key *fc_key_load(const unsigned char *data, size_t len, int der);
/* An EC key on P-256 (bits 256) or P-384 (bits 384) from its private scalar and its
   uncompressed public point (what `cryptography` gives without re-encoding the key). */
fc_key *fc_key_ec(int bits, const unsigned char *priv, size_t priv_len,
                  const unsigned char *pub, size_t pub_len);
/* A new EC key on P-256 (bits 256) or P-384 (bits 384). */
fc_key *fc_key_gen_ec(int bits);
void fc_key_free(fc_key *key);
/* FC_RSA, FC_P256, FC_P384, or FC_EKEY for any other key. */
int fc_key_type(const fc_key *key);
/* The unencrypted PKCS#8 DER of the private key. */
int fc_key_pkcs8(const fc_key *key, unsigned char *out, size_t cap, size_t *outlen);

/* RFC 7515 flattened JSON of a JWS: {"protected":B64(prot),"payload":B64(payload),
   "signature":B64(sig)} with RS256, ES256 or ES384 by the key (ECDSA as raw r||s,
   RFC 7518 section 3.4). */
int fc_jws_sign(const fc_key *key, const unsigned char *prot, size_t prot_len,
                const unsigned char *payload, size_t payload_len,
                unsigned char *out, size_t cap, size_t *outlen);

/* The RFC 8737 section 3 validation certificate: empty subject and issuer, one critical
   SAN (san_type FC_NAME_DNS: a dNSName; FC_NAME_IP: 4 or 16 address octets), the
   critical acmeIdentifier holding the 32-byte digest, self-signed with ECDSA SHA-256
   by key (P-256). */
int fc_alpn_cert(const fc_key *key, int san_type, const unsigned char *san, size_t san_len,
                 const unsigned char *digest, const unsigned char *serial, size_t serial_len,
                 long long not_before, long long not_after,
                 unsigned char *out, size_t cap, size_t *outlen);

/* A PKCS#10 request (crypto.csr_gen): CN cn (cn_len 0: none), the SANs (types FC_NAME_DNS
   or FC_NAME_IP, names[i] of name_lens[i] bytes), keyUsage (0: none, 1: digitalSignature,
   2: and keyEncipherment) critical, TLS Feature status_request when status_req; SHA-256,
   or SHA-384 for a P-384 key. */
int fc_csr(const fc_key *key, const unsigned char *cn, size_t cn_len, int nnames,
           const int *types, const unsigned char **names, const size_t *name_lens,
           int key_usage, int status_req, unsigned char *out, size_t cap, size_t *outlen);
