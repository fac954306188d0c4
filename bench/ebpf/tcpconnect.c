/* tcpconnect N: N TCP connects (and closes) to a loopback listener served by a thread of this process;
 * prints microseconds per connect. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int lfd;
static void* serve(void* arg) {
  (void)arg;
  for (;;) {
    int c = accept(lfd, NULL, NULL);
    if (c >= 0) close(c);
  }
  return NULL;
}

int main(int argc, char** argv) {
  long n = argc > 1 ? atol(argv[1]) : 50000;
  struct sockaddr_in sin = {0};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  lfd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr*)&sin, sizeof sin) || listen(lfd, 4096)) return 1;
  socklen_t len = sizeof sin;
  getsockname(lfd, (struct sockaddr*)&sin, &len);
  pthread_t t;
  pthread_create(&t, NULL, serve, NULL);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct linger lg = {1, 0}; /* RST on close: no TIME_WAIT pile-up over 50k connects */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    if (connect(fd, (struct sockaddr*)&sin, sizeof sin) != 0) return 2;
    close(fd);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.2f\n", ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e3 / (double)n);
  return 0;
}
