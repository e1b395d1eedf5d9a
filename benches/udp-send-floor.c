/*
 * The kernel's floor for UDP export over loopback: CPU time of the sending thread alone for
 * N datagrams of L bytes sent to a receiver in the same process (a thread draining the socket),
 * with send(2) (mode 0), sendmmsg(2) in batches of 64 (mode 1) or UDP GSO segments of L bytes
 * (mode 2; the receiver may drop some, its buffer is not the point). The defaults are the
 * 10 M-packet benchmark's IPFIX export: 87 459 datagrams of 1400 bytes.
 *
 *   gcc -O2 -pthread benches/udp-send-floor.c -o /tmp/udp-send-floor
 *   /tmp/udp-send-floor 0; /tmp/udp-send-floor 1; /tmp/udp-send-floor 2
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
static long got;
void *rx(void *a){int s=*(int*)a;char b[65536];for(;;){if(recv(s,b,sizeof b,0)<=0)break;got++;}return 0;}
double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
double cpu(){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec+t.tv_nsec/1e9;}
int main(int argc,char**argv){
 int mode=atoi(argv[1]); int N=87459; int L=1400;
 int r=socket(AF_INET,SOCK_DGRAM,0); struct sockaddr_in a={.sin_family=AF_INET,.sin_addr.s_addr=htonl(0x7f000001)};
 bind(r,(void*)&a,sizeof a); socklen_t al=sizeof a; getsockname(r,(void*)&a,&al);
 int big=64<<20; setsockopt(r,SOL_SOCKET,SO_RCVBUF,&big,sizeof big);
 pthread_t t; pthread_create(&t,0,rx,&r);
 int s=socket(AF_INET,SOCK_DGRAM,0); connect(s,(void*)&a,sizeof a);
 char *buf=calloc(1,65536);
 double w0=now(),c0=cpu();
 if(mode==0){for(int i=0;i<N;i++) send(s,buf,L,0);}
 else if(mode==1){ struct mmsghdr m[64]; struct iovec v[64];
   for(int i=0;i<64;i++){v[i].iov_base=buf;v[i].iov_len=L;memset(&m[i],0,sizeof m[i]);m[i].msg_hdr.msg_iov=&v[i];m[i].msg_hdr.msg_iovlen=1;}
   for(int i=0;i<N;i+=64){int n=N-i<64?N-i:64; sendmmsg(s,m,n,0);} }
 else { int seg=L; setsockopt(s,SOL_UDP,UDP_SEGMENT,&seg,sizeof seg); int per=40; for(int i=0;i<N;i+=per){int n=N-i<per?N-i:per; send(s,buf,n*L,0);} }
 double w1=now(),c1=cpu();
 usleep(300000);
 printf("mode %d: wall %.3f s, sender thread cpu %.3f s, got %ld/%d\n",mode,w1-w0,c1-c0,got,N);
}
