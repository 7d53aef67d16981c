/* wucme certificate scan: what the repository scan needs of a chain's leaf, from the DER.
   This text is both the cffi cdef and the C header: plain declarations only.
   wucme/_native/certscan.py is the checked layer, certscan_pure.py the twin. */

#define CS_OK 0
#define CS_EUNSUPP -1    /* not handled here (anything unusual, every malformed input): ask the twin */
#define CS_ENOENT -2     /* the file does not exist */
#define CS_EIO -3        /* the file cannot be read here (the caller reads it again for the reason) */

/* Kinds of name in struct cs_cert. */
#define CS_NAME_CN 1
#define CS_NAME_DNS 2
#define CS_NAME_IP 3

#define CS_MAX_NAMES 256

/* The leaf's fields; offsets are into its DER, which starts the caller's buffer. */
struct cs_cert {
    long long not_before;           /* seconds since the epoch, UTC */
    long long not_after;
    int der_len;                    /* the leaf's DER is der[0 .. der_len) */
    int serial_off, serial_len;     /* INTEGER content octets, positive, minimal */
    int aki_off, aki_len;           /* keyIdentifier; aki_len -1 when there is none */
    int nnames;                     /* CN values, SAN dNSNames and iPAddresses, in order */
    int name_type[256];
    int name_off[256];
    int name_len[256];
};

/* The leaf of a PEM chain (certificates, then any private key), every certificate
   checked.  der must hold cap >= len bytes.  CS_OK or CS_EUNSUPP. */
int cs_cert_scan(const unsigned char *pem, size_t len, unsigned char *der, size_t cap,
                 struct cs_cert *out);

/* cs_cert_scan() of the file at path, read here: CS_OK, CS_EUNSUPP, CS_ENOENT or CS_EIO. */
int cs_cert_file(const char *path, unsigned char *der, size_t cap, struct cs_cert *out);

/* Do WUCME_C_<part>.PEM and WUCME_S_<part>.JSON in the directory open as dfd still have the
   keys the scan index holds for them (ckey, skey: "size,mtime_ns,ctime_ns,inode", what
   stat(2) says, as wucme.scanindex writes it)?  1 when both do; 0 when either differs, is
   missing or cannot be stat'ed (the scan then looks at the files itself). */
int cs_same_keys(int dfd, const char *part, size_t part_len, const char *ckey, size_t ckey_len,
                 const char *skey, size_t skey_len);
