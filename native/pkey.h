/* wucme's keys on the system's libcrypto: made, read, written and used to sign without
   `cryptography`, whose own OpenSSL beside the one `ssl` has loaded is most of what
   `wucme issue` pays for keys (docs/performance.md, "Crypto fast path").
   This text is both the cffi cdef and the C header: plain declarations only.
   wucme/_native/pkey.py is the checked layer; `cryptography` (wucme.crypto) is the twin. */

/* Return codes of the functions that return a length (lengths are > 0). */
#define PK_EARG -1      /* an argument is out of range */
#define PK_ECRYPTO -2   /* libcrypto failed */

/* Kinds of key. */
#define PK_RSA 1
#define PK_EC 2

/* Forms of the DER given to pk_load(). */
#define PK_PKCS8 1      /* PrivateKeyInfo (RFC 5208 section 5), unencrypted */
#define PK_TRAD_RSA 2   /* RSAPrivateKey (RFC 8017 appendix A.1.2) */
#define PK_TRAD_EC 3    /* ECPrivateKey (RFC 5915 section 3) */

typedef struct pk_key pk_key;

/* A new key: PK_EC with bits 256 (P-256) or 384 (P-384), or PK_RSA with bits 2048..8192,
   a multiple of 8, public exponent 65537.  NULL for other arguments or when libcrypto fails. */
pk_key *pk_generate(int kind, int bits);

/* The key whose DER (of the form given) is der, when it is one of the keys pk_generate()
   makes (RSA 2048..8192 with two primes; EC on the named curve P-256 or P-384, its public
   point uncompressed and matching the private value) and der is exactly what libcrypto
   writes for it in that form.  NULL for anything else: the twin decides what that is. */
pk_key *pk_load(int form, const unsigned char *der, size_t len);

void pk_free(pk_key *key);
/* PK_RSA or PK_EC. */
int pk_kind(const pk_key *key);
/* The modulus size of an RSA key, 256 or 384 for an EC key. */
int pk_bits(const pk_key *key);

/* These return the length of their output and write it to out when it fits in cap bytes
   (call again with a buffer of that length when it did not), or a PK_E* code. */

/* The private key as unencrypted PKCS#8 DER (PrivateKeyInfo). */
int pk_pkcs8(const pk_key *key, unsigned char *out, size_t cap);
/* The public key as SubjectPublicKeyInfo DER (RFC 5280 section 4.1.2.7). */
int pk_spki(const pk_key *key, unsigned char *out, size_t cap);
/* The signature of data: RSA PKCS#1 v1.5 with SHA-256; ECDSA with SHA-256 (P-256) or
   SHA-384 (P-384), as a DER ECDSA-Sig-Value (RFC 3279 section 2.2.3).  When cap is less
   than the longest signature the key makes, nothing is signed and that length returned. */
int pk_sign(const pk_key *key, const unsigned char *data, size_t len, unsigned char *out,
            size_t cap);
