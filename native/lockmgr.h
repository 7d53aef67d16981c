/* wucme lock manager: VMS DLM modes on Linux open-file-description locks.
   This text is both the cffi cdef and the C header: plain declarations only.
   Every function returns 0 (or a documented non-negative value) or -errno. */

#define LM_NL 0
#define LM_CR 1
#define LM_CW 2
#define LM_PR 3
#define LM_PW 4
#define LM_EX 5

#define LM_LVB_SIZE 64

/* The value block's state byte. */
#define LM_LVB_VALID 0
#define LM_LVB_HELD 1
#define LM_LVB_INVALID 2

int lm_open(const char *path, int perm);
int lm_lock(int fd, int mode, int wait_ms);
int lm_convert(int fd, int oldmode, int newmode, int wait_ms);
int lm_unlock(int fd);
int lm_read_lvb(int fd, unsigned char *buf, int len);
int lm_write_lvb(int fd, const unsigned char *buf, int len, int state);
int lm_close(int fd);
