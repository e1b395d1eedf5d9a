/*
 * The benchmark's collector socket: counts and discards UDP datagrams on 127.0.0.1, reading
 * them 64 at a time with recvmmsg(2) so that the receiver takes as little as possible of the
 * CPU the exporter under test shares with it (a Python recv() loop costs about 2 µs per
 * datagram, as much as the sender's own kernel work).
 *
 *   cc -O2 benches/udp-sink.c -o udp-sink && ./udp-sink COUNT_FILE
 *
 * Prints the bound port on stdout; on SIGUSR1 writes "datagrams bytes" read so far to
 * COUNT_FILE (via COUNT_FILE.tmp and rename, so a reader never sees half a line).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define BATCH 64
#define SIZE 65536

static volatile sig_atomic_t dump_wanted;
static void on_usr1(int sig) { (void)sig; dump_wanted = 1; }

static void dump(const char *path, unsigned long long n, unsigned long long bytes) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) { perror(tmp); return; }
    fprintf(f, "%llu %llu\n", n, bytes);
    fclose(f);
    if (rename(tmp, path) != 0) perror(path);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s COUNT_FILE\n", argv[0]); return 2; }
    /* Before the port is printed: the caller may signal as soon as it reads the port. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART: recvmmsg returns EINTR */
    sigaction(SIGUSR1, &sa, NULL);

    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0) {
        perror("udp-sink: socket");
        return 1;
    }
    int rcvbuf = 8 << 20;
    setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    /* A signal landing just before recvmmsg blocks is seen within 20 ms all the same. */
    struct timeval tick = { .tv_sec = 0, .tv_usec = 20000 };
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof a;
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0
        || getsockname(s, (struct sockaddr *)&a, &alen) != 0) {
        perror("udp-sink: socket");
        return 1;
    }
    printf("%d\n", ntohs(a.sin_port));
    fflush(stdout);

    static char bufs[BATCH][SIZE];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = SIZE;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long long n = 0, bytes = 0;
    for (;;) {
        if (dump_wanted) {
            dump_wanted = 0;
            dump(argv[1], n, bytes);
        }
        int got = recvmmsg(s, msgs, BATCH, MSG_WAITFORONE, NULL);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
            perror("udp-sink: recvmmsg");
            return 1;
        }
        for (int i = 0; i < got; i++) bytes += msgs[i].msg_len;
        n += (unsigned long long)got;
    }
}
