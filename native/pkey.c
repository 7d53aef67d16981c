/* wucme's keys on the system's libcrypto, with OpenSSL 3 APIs: see pkey.h.

   `wucme issue` makes a certificate key, reads the account key, writes the key, builds a
   CSR and signs a dozen JWS; `cryptography` did all that with the OpenSSL it bundles,
   loaded beside the system's that `ssl` has already mapped (about 10 MiB and 11 ms of
   imports).  Here the same work runs on the system's libcrypto.

   Every public function leaves libcrypto's error queue empty: `ssl` shares it (the same
   library in the same thread), and an error left there would be blamed on its next call.
   Private key bytes this file allocates are cleansed before they are freed. */

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "pkey.h"

struct pk_key {
    EVP_PKEY *pkey;
    int kind; /* PK_RSA or PK_EC */
    int bits; /* the modulus size, or 256 or 384 */
};

/* The longest key DER read: far above an RSA-8192 key's (about 4.8 KB). */
#define MAX_DER 65536

static pk_key *wrap(EVP_PKEY *pkey, int kind, int bits)
{
    pk_key *k;
    if (pkey == NULL)
        return NULL;
    if ((k = malloc(sizeof *k)) == NULL) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    k->pkey = pkey;
    k->kind = kind;
    k->bits = bits;
    return k;
}

pk_key *pk_generate(int kind, int bits)
{
    EVP_PKEY *pkey = NULL;
    if (kind == PK_EC && (bits == 256 || bits == 384))
        pkey = EVP_EC_gen(bits == 256 ? "P-256" : "P-384");
    else if (kind == PK_RSA && bits >= 2048 && bits <= 8192 && bits % 8 == 0)
        pkey = EVP_RSA_gen((unsigned)bits); /* public exponent 65537, libcrypto's default */
    if (pkey != NULL && EVP_PKEY_get_bits(pkey) != bits) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    ERR_clear_error();
    return wrap(pkey, kind, bits);
}

/* Is the UTF-8 string parameter `name` of pkey exactly `want`? */
static int param_is(const EVP_PKEY *pkey, const char *name, const char *want)
{
    char value[64];
    size_t n = 0;
    return EVP_PKEY_get_utf8_string_param(pkey, name, value, sizeof value, &n) &&
           n < sizeof value && strcmp(value, want) == 0;
}

/* 256 or 384 for a key on P-256 or P-384 named as a curve (not by explicit parameters)
   with its point uncompressed; 0 for any other EC key. */
static int ec_bits(const EVP_PKEY *pkey)
{
    int bits = param_is(pkey, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1")  ? 256
               : param_is(pkey, OSSL_PKEY_PARAM_GROUP_NAME, "secp384r1") ? 384
                                                                          : 0;
    if (!param_is(pkey, OSSL_PKEY_PARAM_EC_ENCODING, OSSL_PKEY_EC_ENCODING_GROUP) ||
        !param_is(pkey, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                  OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED))
        return 0;
    return bits;
}

/* Does the RSA key have exactly two primes (no otherPrimeInfos, RFC 8017 A.1.2)? */
static int two_primes(const EVP_PKEY *pkey)
{
    BIGNUM *third = NULL;
    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_FACTOR3, &third)) {
        BN_clear_free(third);
        return 0;
    }
    return 1;
}

/* The key in der, of the form given, which must be all of der. */
static EVP_PKEY *decode(int form, const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    EVP_PKEY *pkey = NULL;
    if (form == PK_PKCS8) {
        PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
        if (p8 == NULL)
            return NULL;
        if (p == der + len)
            pkey = EVP_PKCS82PKEY(p8);
        PKCS8_PRIV_KEY_INFO_free(p8); /* cleanses the private key octets */
    } else {
        pkey = d2i_PrivateKey(form == PK_TRAD_RSA ? EVP_PKEY_RSA : EVP_PKEY_EC, NULL, &p, (long)len);
        if (pkey != NULL && p != der + len) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
    }
    return pkey;
}

/* The DER of pkey in form, allocated by libcrypto (*der; free with OPENSSL_clear_free), and
   its length; <= 0 when it cannot be written. */
static int encode(EVP_PKEY *pkey, int form, unsigned char **der)
{
    int n;
    *der = NULL;
    if (form == PK_PKCS8) {
        PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pkey);
        if (p8 == NULL)
            return -1;
        n = i2d_PKCS8_PRIV_KEY_INFO(p8, der);
        PKCS8_PRIV_KEY_INFO_free(p8);
    } else {
        n = i2d_PrivateKey(pkey, der);
    }
    if (n <= 0) {
        OPENSSL_free(*der); /* nothing was written */
        *der = NULL;
    }
    return n;
}

pk_key *pk_load(int form, const unsigned char *der, size_t len)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    unsigned char *again = NULL;
    int kind = 0, bits = 0, ok = 0, n = 0;
    if (der == NULL || len == 0 || len > MAX_DER ||
        (form != PK_PKCS8 && form != PK_TRAD_RSA && form != PK_TRAD_EC))
        return NULL;
    if ((pkey = decode(form, der, len)) == NULL)
        goto out;
    switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
        kind = PK_RSA;
        bits = EVP_PKEY_get_bits(pkey);
        ok = form != PK_TRAD_EC && bits >= 2048 && bits <= 8192 && two_primes(pkey);
        break;
    case EVP_PKEY_EC:
        /* The public point must be the private value's: EVP_PKEY_check() computes it
           (and checks the point and the value's range); an RSA key is not checked, as
           crypto.key_load_own() does not check it (OpenSSL checks its CRT result when
           it signs). */
        kind = PK_EC;
        bits = ec_bits(pkey);
        ok = form != PK_TRAD_RSA && bits != 0 &&
             (ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) != NULL && EVP_PKEY_check(ctx) == 1;
        break;
    default:
        break;
    }
    /* Exactly what libcrypto writes for this key: strict DER, nothing left out or added
       (an EC key without its public point, say).  What `cryptography` would read
       differently never gets here. */
    if (ok) {
        n = encode(pkey, form, &again);
        ok = n > 0 && (size_t)n == len && CRYPTO_memcmp(again, der, len) == 0;
    }
out:
    if (again != NULL)
        OPENSSL_clear_free(again, (size_t)n);
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    ERR_clear_error();
    return wrap(pkey, kind, bits);
}

void pk_free(pk_key *key)
{
    if (key != NULL) {
        EVP_PKEY_free(key->pkey); /* cleanses the private values */
        free(key);
    }
}

int pk_kind(const pk_key *key)
{
    return key == NULL ? PK_EARG : key->kind;
}

int pk_bits(const pk_key *key)
{
    return key == NULL ? PK_EARG : key->bits;
}

int pk_pkcs8(const pk_key *key, unsigned char *out, size_t cap)
{
    unsigned char *der = NULL;
    int n;
    if (key == NULL || (out == NULL && cap))
        return PK_EARG;
    n = encode(key->pkey, PK_PKCS8, &der);
    if (n <= 0) {
        n = PK_ECRYPTO;
    } else {
        if ((size_t)n <= cap)
            memcpy(out, der, (size_t)n);
        OPENSSL_clear_free(der, (size_t)n);
    }
    ERR_clear_error();
    return n;
}

int pk_spki(const pk_key *key, unsigned char *out, size_t cap)
{
    unsigned char *der = NULL;
    int n;
    if (key == NULL || (out == NULL && cap))
        return PK_EARG;
    n = i2d_PUBKEY(key->pkey, &der);
    if (n <= 0) {
        n = PK_ECRYPTO;
    } else if ((size_t)n <= cap) {
        memcpy(out, der, (size_t)n);
    }
    OPENSSL_free(der);
    ERR_clear_error();
    return n;
}

int pk_sign(const pk_key *key, const unsigned char *data, size_t len, unsigned char *out,
            size_t cap)
{
    EVP_MD_CTX *ctx;
    size_t n;
    int r = PK_ECRYPTO, most;
    if (key == NULL || (data == NULL && len) || (out == NULL && cap))
        return PK_EARG;
    most = EVP_PKEY_get_size(key->pkey);
    if (most <= 0)
        r = PK_ECRYPTO;
    else if (cap < (size_t)most)
        r = most;
    else if ((ctx = EVP_MD_CTX_new()) != NULL) {
        const EVP_MD *md = key->kind == PK_EC && key->bits == 384 ? EVP_sha384() : EVP_sha256();
        n = cap;
        if (EVP_DigestSignInit(ctx, NULL, md, NULL, key->pkey) == 1 &&
            EVP_DigestSign(ctx, out, &n, data, len) == 1 && n > 0 && n <= (size_t)most)
            r = (int)n;
        EVP_MD_CTX_free(ctx);
    }
    ERR_clear_error();
    return r;
}
