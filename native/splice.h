/* wucme relay: copy a proxied connection both ways inside the kernel with splice(2).
   This text is both the cffi cdef and the C header: plain declarations only.
   wucme/_native/splice.py is the checked layer, splice_pure.py the twin. */

#define SR_DONE 0       /* both sides sent EOF and everything was passed on */
#define SR_IDLE 1       /* nothing moved for idle_ms milliseconds */
#define SR_ERROR -1     /* a side failed (reset, ...): the relay is over; errno says why */

/* Relay between the non-blocking stream sockets front and back until both are finished, either
   fails, or nothing moves for idle_ms.  EOF from one side becomes shutdown(SHUT_WR) on the other.
   Each direction goes through a pipe of its own, so the bytes never reach user space; at most a
   pipe's capacity waits per direction.  Called without the GIL (cffi releases it). */
int splice_relay(int front, int back, int idle_ms);
